// Readable API errors, apart from the typed client (the node agent loads no client-node:
// it is most of a process's memory, on every node).
export function codeOf(err: unknown): number | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
}

/**
 * One line for a person: the API server's Status message when there is one; for an answer
 * that is not a Status (a proxy's 504 page), its code and the body's first words; for no
 * answer, the cause (ECONNREFUSED). Never client-node's multi-line dump of body and headers.
 */
export function errorText(err: unknown): string {
  const code = codeOf(err);
  if (err && typeof err === 'object' && 'body' in err) {
    const body = (err as { body: unknown }).body;
    let status: { message?: string } | undefined;
    if (typeof body === 'string') {
      try {
        status = JSON.parse(body) as { message?: string };
      } catch {
        // not a Status
      }
    } else if (body && typeof body === 'object') status = body as { message?: string };
    if (typeof status?.message === 'string' && status.message) return oneLine(`${code ?? ''} ${status.message}`);
    if (code !== undefined) {
      const text = typeof body === 'string' ? body.replace(/<[^>]*>/g, ' ') : '';
      return oneLine(`${code} ${httpReason(code)}${text.trim() ? `: ${text}` : ''}`);
    }
  }
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    const sys = (err as Error & { code?: unknown }).code;
    // client-node's ApiException without a body still dumps "HTTP-Code: ...\nMessage: ..." into message.
    const first = err.message.split('\n')[0]!;
    // A system error's code (ECONNREFUSED), the error's own or its cause's; an API error
    // wrapped with { cause } already says its status in the message.
    const why = (typeof cause?.code === 'string' ? cause.code : undefined) ?? (typeof sys === 'string' ? sys : undefined);
    return oneLine(why && !first.includes(why) ? `${first} (${why})` : first);
  }
  return oneLine(String(err));
}

/** For a log line: an API error as one line (errorText); another Error with its stack (a bug's trace is worth its lines). */
export function errorDetail(err: unknown): string {
  if (codeOf(err) !== undefined || (err && typeof err === 'object' && 'body' in err)) return errorText(err);
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

function oneLine(s: string, max = 300): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

const HTTP_REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
const httpReason = (code: number) => HTTP_REASONS[code] ?? 'answer';
