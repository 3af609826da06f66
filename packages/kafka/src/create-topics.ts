import type { Admin, ITopicConfig } from 'kafkajs';

/**
 * Runs `attempt` again while it fails with UNKNOWN_TOPIC_OR_PARTITION ("This server does
 * not host this topic-partition"), with backoff, for up to `timeoutMs`. Right after
 * CreateTopics (ours or another process's) the broker can answer that for a moment, and
 * kafkajs retries it neither inside createTopics' own wait for leaders nor inside
 * subscribe() or a consumer's first join: workers started together with their topics failed
 * at boot (the demo's consumers and the DLQ mirror on a new cluster). Any other error is
 * thrown at once.
 */
export async function retryWhileTopicUnknown<T>(attempt: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await attempt();
    } catch (error) {
      if (!isUnknownTopic(error) || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function isUnknownTopic(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if ((e as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return true;
    e = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Creates the topics that do not exist yet (existing ones keep their partition count) and
 * returns once the broker serves every partition of every one with a leader, so a producer
 * or consumer that starts next does not meet a topic the broker does not host yet.
 */
export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  if (topics.length === 0) return;
  await retryWhileTopicUnknown(async () => {
    await admin.createTopics({ waitForLeaders: true, topics });
    const { topics: described } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
    const leaderless = described.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0));
    if (leaderless.length > 0) {
      throw Object.assign(new Error(`no leader yet for ${leaderless.map((t) => t.name).join(', ')}`), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    }
  });
}
