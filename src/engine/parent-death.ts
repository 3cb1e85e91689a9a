// An engine process must not outlive its server (it holds the device). The IPC channel's
// `disconnect` covers a server that exits or closes it; this covers a server killed by SIGKILL
// whose channel close went unnoticed: when we get re-parented (ppid changes), exit.
export function dieWithParent(intervalMs = 1000): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, intervalMs);
  timer.unref();
}
