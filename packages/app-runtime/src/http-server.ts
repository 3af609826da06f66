import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a service's health server answers with. */
export interface HealthEndpoints {
  /** Process is up (never checks dependencies: a restart would not fix them). */
  live(): boolean;
  /** Dependencies answer; the JSON body says which failed. */
  ready(): { ready: boolean; [key: string]: unknown };
  /** Prometheus text format. */
  metrics(): Promise<string>;
}

/** /livez, /readyz and /metrics. */
export async function startHttpServer(host: string, port: number, endpoints: HealthEndpoints): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (path === '/livez') return send(endpoints.live() ? 200 : 503, 'text/plain', endpoints.live() ? 'ok\n' : 'not running\n');
    if (path === '/readyz') {
      const state = endpoints.ready();
      return send(state.ready ? 200 : 503, 'application/json', `${JSON.stringify(state)}\n`);
    }
    if (path === '/metrics') {
      endpoints.metrics().then(
        (text) => send(200, 'text/plain; version=0.0.4', text),
        (error: Error) => send(500, 'text/plain', `metrics failed: ${error.message}\n`),
      );
      return;
    }
    send(404, 'text/plain', 'not found: try /livez, /readyz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
