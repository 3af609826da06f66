import { connect } from 'node:net';

/**
 * Some broker accepts a TCP connection. Deliberately shallow: the consumer itself reconnects
 * and rejoins its group, so readiness only needs to say whether Kafka is reachable at all.
 */
export async function probeBrokers(brokers: readonly string[], timeoutMs: number): Promise<boolean> {
  const attempts = brokers.map(
    (broker) =>
      new Promise<boolean>((resolve) => {
        const at = broker.lastIndexOf(':');
        const socket = connect({ host: broker.slice(0, at), port: Number(broker.slice(at + 1)) });
        const done = (ok: boolean) => {
          socket.destroy();
          resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      }),
  );
  return (await Promise.all(attempts)).some(Boolean);
}
