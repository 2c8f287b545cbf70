/*
 * sigexec PROGRAM [ARGS...]: runs PROGRAM with every signal at its default disposition
 * and none blocked.
 *
 * A POSIX shell without job control starts a background job with SIGINT and SIGQUIT
 * ignored, and an ignored signal stays ignored across exec, so an app the supervisor
 * started as `app &` could never get INT (Ctrl-C, graceful stops) or QUIT (nginx's stop
 * signal; a JVM's thread dump, with -Xrs). The supervisor starts the app through this
 * instead. Built static (no libc needed in the app image): see dev/shim-helper.ts
 * and the Dockerfile.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: sigexec PROGRAM [ARGS...]\n", stderr);
    return 64;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  /* KILL, STOP and the C library's reserved signals refuse; that is fine. */
  for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execvp(argv[1], argv + 1);
  int err = errno;
  fprintf(stderr, "sigexec: %s: %s\n", argv[1], strerror(err));
  return err == ENOENT ? 127 : 126;
}
