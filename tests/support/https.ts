import https from 'node:https';

export interface Reply {
  status: number;
  body: string;
  json(): any;
}

export function request(
  port: number,
  ca: string,
  path: string,
  { method = 'POST', body, contentType = 'application/json', agent, headers = {} }: { method?: string; body?: string | Buffer; contentType?: string; agent?: https.Agent; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, method, ca, agent, servername: 'localhost', headers: { ...(body !== undefined ? { 'content-type': contentType } : {}), ...headers } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, json: () => JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
