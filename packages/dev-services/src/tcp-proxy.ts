import net from 'node:net';

/** What the proxy does with traffic right now. */
export type ProxyMode = 'pass' | 'drop' | 'stall';

/**
 * A TCP proxy in front of a service (Postgres for the relays, or a private Kafka broker for
 * every Kafka client) that a test or a fault-matrix scenario can cut.
 *
 * - `pass`: forwards both ways.
 * - `drop`: resets every open connection and every new one until the mode changes: clients
 *   see ECONNRESET / a failed connect, as on a broken route that the kernel reports.
 * - `stall`: keeps the connections open and accepts new ones, but forwards nothing (bytes
 *   are held, not lost) until the mode changes: a black hole clients have to sit out
 *   without an error, until their own timeouts fire.
 *
 * Kafka needs the broker's help: a client bootstraps, then reconnects to the address the
 * broker *advertises*, so a proxy only in front of the bootstrap port would be bypassed
 * after the first metadata request. Start the proxy first and make a `PrivateBroker`
 * advertise its port (`advertisedPort`): then every connection, bootstrap or not, goes
 * through here (the fault matrix's `kafkaProxy` scenarios, the relay's black-hole test).
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private modeNow: ProxyMode = 'pass';
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get mode(): ProxyMode {
    return this.modeNow;
  }

  /** Connections accepted so far (useful to show the clients really went through the proxy). */
  accepted = 0;

  async start(): Promise<this> {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  setMode(mode: ProxyMode): void {
    this.modeNow = mode;
    if (mode === 'drop') {
      for (const { client, upstream } of this.pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      this.pairs.clear();
      this.held = [];
    } else if (mode === 'pass') {
      const held = this.held;
      this.held = [];
      for (const { to, chunk } of held) if (!to.destroyed) to.write(chunk);
    }
  }

  /** Bytes received while stalled, in arrival order, delivered when the mode returns to `pass`. */
  private held: Array<{ to: net.Socket; chunk: Buffer }> = [];

  private forward(to: net.Socket, chunk: Buffer): void {
    if (this.modeNow === 'stall') this.held.push({ to, chunk });
    else if (!to.destroyed) to.write(chunk);
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    if (this.modeNow === 'drop') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    // Forwarded by hand (not pipe()) so a stall holds every byte, whatever the socket buffers do.
    client.on('data', (chunk: Buffer) => this.forward(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => this.forward(client, chunk));
  }

  async stop(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
