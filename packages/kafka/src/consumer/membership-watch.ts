/**
 * Notices a consumer that has stopped being a live member of its group without crashing.
 *
 * After a network cut longer than the session timeout the coordinator expels the member.
 * kafkajs rejoins when a heartbeat answers UNKNOWN_MEMBER_ID, but the fault matrix (scenario
 * 9, a 10 s connection reset) saw a worker go 77 s with every offset commit refused ("The
 * coordinator is not aware of this member") and nothing delivered from its partitions. A
 * healthy member heartbeats every `heartbeatIntervalMs` (kafkajs between fetches, this
 * package's batch handler during long handlers), and a rebalance ends in a join: no
 * successful heartbeat and no join for `limitMs` means the member is gone, idle or not, and
 * the client starts a fresh consumer.
 */
export class MembershipWatch {
  private lastSign: number;

  constructor(
    private readonly limitMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSign = now();
  }

  /** A heartbeat the coordinator accepted, or a join: the member is live. */
  alive(): void {
    this.lastSign = this.now();
  }

  /** True when no sign of membership came for `limitMs`. */
  expired(): boolean {
    return this.now() - this.lastSign >= this.limitMs;
  }
}
