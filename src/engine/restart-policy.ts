// Bounded restarts with exponential backoff: the engine is restarted after a crash, hang or
// exception, but a server whose engine keeps dying gives up (and exits non-zero) so that its
// own supervisor (systemd, Kubernetes) sees the failure instead of a crash loop hidden inside.
export interface RestartPolicyOptions {
  /** Restarts allowed within `windowMs`; one more death and the policy gives up. */
  maxRestarts: number;
  windowMs: number;
  /** Delay before the first restart of a burst; doubles per recent restart, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = { maxRestarts: 3, windowMs: 10 * 60_000, backoffMs: 500, maxBackoffMs: 10_000 };

export class RestartPolicy {
  private readonly recent: number[] = [];
  constructor(private readonly o: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** After a death at `now`: the delay before restarting, or null to give up. */
  next(now: number): number | null {
    while (this.recent.length > 0 && now - this.recent[0]! > this.o.windowMs) this.recent.shift();
    if (this.recent.length >= this.o.maxRestarts) return null;
    const delay = Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** this.recent.length);
    this.recent.push(now);
    return delay;
  }
}
