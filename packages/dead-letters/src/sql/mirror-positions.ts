import type pg from 'pg';

/** Where the DLQ mirror is in one partition of a DLQ topic. */
export interface DlqMirrorPosition {
  topic: string;
  partition: number;
  /** The offset of the next record the mirror will copy from this partition. */
  nextOffset: string;
  updatedAt: Date;
}

/** The mirror's positions in one DLQ topic (what an admin UI shows next to a dead letter). */
export const DLQ_MIRROR_POSITIONS_SQL = `
SELECT topic, partition, next_offset::text, updated_at FROM eventbus.dlq_mirror_positions WHERE topic = $1 ORDER BY partition`;

export async function dlqMirrorPositions(db: pg.Pool, topic: string): Promise<DlqMirrorPosition[]> {
  const { rows } = await db.query(DLQ_MIRROR_POSITIONS_SQL, [topic]);
  return rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: r.next_offset, updatedAt: r.updated_at }));
}
