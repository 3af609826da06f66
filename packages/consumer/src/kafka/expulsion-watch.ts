/**
 * Notices a member that the group coordinator no longer knows and that does not rejoin.
 *
 * After a network cut longer than the session timeout the coordinator expels the member.
 * kafkajs rejoins when a heartbeat answers UNKNOWN_MEMBER_ID, but the fault matrix (scenario
 * 9, a 10 s connection reset) saw a worker go on for 77 s with every offset commit refused
 * ("The coordinator is not aware of this member") and none of its partitions delivered,
 * until a fresh consumer rejoined. The background commits, once a second while work is
 * finished, are the signal: refused for `limitMs` in a row, the client starts a fresh consumer.
 */
export class ExpulsionWatch {
  private since: number | undefined;

  constructor(
    private readonly limitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A background commit failed; true once the member has been refused as unknown for `limitMs`. */
  commitFailed(error: unknown): boolean {
    if (!isMemberRefused(error)) return false;
    this.since ??= this.now();
    return this.now() - this.since >= this.limitMs;
  }

  /** The member joined a generation: known again. */
  joined(): void {
    this.since = undefined;
  }
}

/** Errors by which the coordinator says this member or its generation is not current. */
const REFUSED_MEMBER = new Set(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'FENCED_INSTANCE_ID', 'REBALANCE_IN_PROGRESS']);

function isMemberRefused(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && REFUSED_MEMBER.has(type)) return true;
    e = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}
