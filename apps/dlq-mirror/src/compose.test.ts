import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { RELAY_ENV } from '../../relay/src/config.js';
import { DLQ_MIRROR_ENV } from './config.js';

/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the compose file
 * is well-formed, its services point at real build targets and files, and every variable it
 * sets on an app is one that app reads (a misspelt variable is otherwise silently ignored,
 * and the app runs on its default). Where a docker client is installed, `docker compose
 * config -q` validates the file against the full Compose specification as well.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

interface ComposeService {
  image?: string;
  build?: string | { context: string; target?: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | number>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test: string[] | string };
  profiles?: string[];
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** An app's env table (RELAY_ENV, DLQ_MIRROR_ENV): name → required or default. */
type EnvSpecTable = Readonly<Record<string, { readonly required?: boolean; readonly default?: string; readonly description?: string }>>;

/** Compose's variable interpolation, with nothing set in the shell (the defaults apply). */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (match, _name: string, fallback: string | undefined) =>
    match === '$$' ? '$' : (fallback ?? ''),
  );
}

function environment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  const entries = Array.isArray(env) ? env.map((e) => e.split('=', 2) as [string, string?]) : Object.entries(env);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v === null || v === undefined ? '' : String(v))]));
}

function dependsOn(service: ComposeService): Record<string, string> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, d]) => [name, d.condition ?? 'service_started']));
}

/** The names a package's own sources read as `process.env.NAME` (tests excluded). */
function processEnvReads(packageDir: string): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]*)|\[['"]([A-Z][A-Z0-9_]*)['"]\])/g)) names.add(m[1] ?? m[2]!);
      }
    }
  };
  walk(join(packageDir, 'src'));
  return names;
}

/** The workspace packages an app runs with: its `dependencies`, transitively (not devDependencies). */
function runtimeWorkspacePackages(packageDir: string, seen = new Map<string, string>()): Map<string, string> {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string> };
  seen.set(pkg.name, packageDir);
  for (const [name, version] of Object.entries(pkg.dependencies ?? {})) {
    if (!version.startsWith('workspace:') || seen.has(name)) continue;
    const dir = [join(ROOT, 'packages', name.replace('@eventbus/', '')), join(ROOT, 'apps', name.replace('@eventbus/', ''))].find((d) =>
      existsSync(join(d, 'package.json')),
    );
    if (!dir) throw new Error(`workspace package ${name} not found under packages/ or apps/`);
    runtimeWorkspacePackages(dir, seen);
  }
  return seen;
}

/** Standard OpenTelemetry SDK variables, read by @opentelemetry/sdk-node in apps that start @eventbus/telemetry. */
const OTEL_SDK_ENV = [
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_PROPAGATORS',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_TRACES_EXPORTER',
  'OTEL_METRICS_EXPORTER',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
];

/** What each app service may be given: its env table, plus what its runtime packages read themselves. */
function variablesReadBy(appDir: string, table: EnvSpecTable): { allowed: Set<string>; required: string[] } {
  const packages = runtimeWorkspacePackages(join(ROOT, appDir));
  const allowed = new Set(Object.keys(table));
  for (const dir of packages.values()) for (const name of processEnvReads(dir)) allowed.add(name);
  if (packages.has('@eventbus/telemetry')) for (const name of OTEL_SDK_ENV) allowed.add(name);
  return {
    allowed,
    required: Object.entries(table)
      .filter(([, spec]) => spec.required)
      .map(([name]) => name),
  };
}

const APPS: Record<string, { dir: string; table: EnvSpecTable; target: string }> = {
  relay: { dir: 'apps/relay', table: RELAY_ENV, target: 'relay' },
  'dlq-mirror': { dir: 'apps/dlq-mirror', table: DLQ_MIRROR_ENV, target: 'dlq-mirror' },
  // The demo has no env table: it finds Postgres and Kafka through @eventbus/dev-services, which
  // reads DATABASE_URL and KAFKA_BROKERS first; in a container both must be set, or it would
  // look for Docker or a local broker that are not there.
  demo: { dir: 'apps/demo', table: { DATABASE_URL: { required: true }, KAFKA_BROKERS: { required: true } }, target: 'demo' },
};

const dockerTargets = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)\s*$/gim)].map((m) => m[1]!);

describe('docker-compose.yml', () => {
  const services = compose.services;

  it('has the pipeline services, each with an image or a build of a real Dockerfile target', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'kafka', 'migrate', 'relay', 'dlq-mirror', 'demo', 'otel-collector', 'jaeger']));
    expect(services.kafka!.image).toMatch(/^apache\/kafka:\d+\.\d+\.\d+$/);
    for (const [name, service] of Object.entries(services)) {
      expect(service.image ?? service.build, `${name}: image or build`).toBeTruthy();
      if (service.image && !service.build) expect(service.image, `${name}: pinned tag`).toMatch(/:[\w.-]+$/);
      if (service.image) expect(service.image, `${name}: no :latest`).not.toMatch(/:latest$/);
      if (service.build) {
        const build = typeof service.build === 'string' ? { context: service.build } : service.build;
        expect(existsSync(join(ROOT, build.context, build.dockerfile ?? 'Dockerfile')), `${name}: Dockerfile in ${build.context}`).toBe(true);
        expect(dockerTargets, `${name}: build target`).toContain(build.target);
      }
    }
    for (const [name, app] of Object.entries(APPS)) {
      const build = services[name]!.build as { target: string };
      expect(build.target, `${name} builds its own target`).toBe(app.target);
    }
  });

  it('publishes well-formed ports, no host port twice', () => {
    const hostPorts: number[] = [];
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) {
        const m = /^(?:[\d.]+:)?(?:(\d+)(?:-(\d+))?:)?(\d+)(?:\/(?:tcp|udp))?$/.exec(String(port));
        expect(m, `${name}: port ${port}`).not.toBeNull();
        const [, from, to] = m!;
        if (from) for (let p = Number(from); p <= Number(to ?? from); p++) hostPorts.push(p);
      }
    }
    expect(hostPorts.length).toBeGreaterThan(0);
    expect(hostPorts.filter((p, i) => hostPorts.indexOf(p) !== i)).toEqual([]);
  });

  it('orders startup on health: dependencies exist, and each awaited one has a health check', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, condition] of Object.entries(dependsOn(service))) {
        const target = services[dependency];
        expect(target, `${name} depends on ${dependency}`).toBeDefined();
        expect(['service_started', 'service_healthy', 'service_completed_successfully'], `${name} → ${dependency}`).toContain(condition);
        if (condition === 'service_healthy') expect(target!.healthcheck, `${dependency} needs a healthcheck for ${name}`).toBeDefined();
        // A service outside a profile must not wait on one that only runs in a profile.
        if (!service.profiles) expect(target!.profiles, `${name} → ${dependency}`).toBeUndefined();
      }
    }
    for (const name of ['relay', 'dlq-mirror', 'demo']) {
      expect(
        Object.values(dependsOn(services[name]!)).every((c) => c !== 'service_started'),
        `${name} waits on conditions`,
      ).toBe(true);
    }
    expect(dependsOn(services.relay!)).toMatchObject({ migrate: 'service_completed_successfully', kafka: 'service_healthy' });
  });

  it('checks the apps on /readyz at the port they listen on, and publishes that port', () => {
    for (const name of ['relay', 'dlq-mirror']) {
      const service = services[name]!;
      const table = APPS[name]!.table;
      const port = environment(service).HTTP_PORT || table.HTTP_PORT!.default!;
      expect(JSON.stringify(service.healthcheck!.test), name).toContain(`127.0.0.1:${port}/readyz`);
      expect(
        service.ports!.map((p) => String(p).split(':').pop()),
        name,
      ).toContain(port);
    }
  });

  for (const [name, app] of Object.entries(APPS)) {
    it(`sets on ${name} only variables that ${app.dir} reads, and every required one`, () => {
      const { allowed, required } = variablesReadBy(app.dir, app.table);
      const env = environment(services[name]!);
      expect(
        Object.keys(env).filter((k) => !allowed.has(k)),
        `unknown to ${app.dir}`,
      ).toEqual([]);
      for (const k of required) expect(env[k], `${name}: ${k}`).toBeTruthy();
      expect(env.KAFKA_BROKERS, `${name} reaches Kafka on the containers' listener`).toBe('kafka:29092');
      expect(env.DATABASE_URL).toMatch(/@postgres:5432\//);
    });
  }

  it('gives the migrate job only what `node …/schema/dist/cli.js` reads', () => {
    const allowed = processEnvReads(join(ROOT, 'packages/schema'));
    const env = environment(services.migrate!);
    expect(Object.keys(env).filter((k) => !allowed.has(k))).toEqual([]);
    expect(env.DATABASE_URL).toBeTruthy();
    expect(services.migrate!.command).toEqual(['node', 'node_modules/@eventbus/schema/dist/cli.js']);
  });

  it("keeps the relay, the mirror and the demo on one topic prefix, and mirrors the demo's groups", () => {
    expect(environment(services.relay!).EVENTBUS_TOPIC_PREFIX).toBe(environment(services['dlq-mirror']!).EVENTBUS_TOPIC_PREFIX);
    const demoSource = readFileSync(join(ROOT, 'apps/demo/src/main.ts'), 'utf8');
    expect(demoSource).toContain(`EVENTBUS_TOPIC_PREFIX || '${environment(services.relay!).EVENTBUS_TOPIC_PREFIX}'`);
    // The groups the mirror service is told about are the demo's consumer groups: the demo
    // names them `${GROUP_PREFIX}<role>`, GROUP_PREFIX defaulting to what DEMO_GROUP_PREFIX leaves unset.
    const defaultGroupPrefix = /DEMO_GROUP_PREFIX \|\| '([^']+)'/.exec(demoSource)?.[1];
    expect(defaultGroupPrefix).toBeDefined();
    expect(environment(services.demo!)).not.toHaveProperty('DEMO_GROUP_PREFIX');
    const groups = environment(services['dlq-mirror']!).DLQ_MIRROR_GROUPS!.split(',');
    expect(groups.length).toBeGreaterThan(0);
    for (const group of groups) {
      expect(group.startsWith(defaultGroupPrefix!), group).toBe(true);
      expect(demoSource, group).toContain(`\`\${GROUP_PREFIX}${group.slice(defaultGroupPrefix!.length)}\``);
    }
  });

  it('runs the collector and the trace viewer only in the otel profile, with a config file that exists', () => {
    for (const name of ['otel-collector', 'jaeger']) expect(services[name]!.profiles).toEqual(['otel']);
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.')) expect(existsSync(join(ROOT, source)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes ?? {}, `${name}: named volume ${source}`).toHaveProperty(source);
      }
    }
    // Without the profile the endpoint is empty, which the telemetry package treats as "no export".
    expect(environment(services.relay!).OTEL_EXPORTER_OTLP_ENDPOINT).toBe('');
  });

  // Only where the docker client has its compose plugin (not on the machine this was
  // written on: a docker binary without compose, no engine); the checks above run everywhere.
  if (composeClient()) {
    it('validates with `docker compose config -q`, the otel profile included', () => {
      execFileSync('docker', ['compose', '-f', join(ROOT, 'docker-compose.yml'), '--profile', 'otel', 'config', '-q'], { cwd: ROOT, stdio: 'pipe' });
    });
  }
});

/** True when `docker compose` runs here (it validates files without an engine). */
function composeClient(): boolean {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

describe('Dockerfile', () => {
  const stage = (name: string) => {
    const start = dockerfile.search(new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${name}\\s*$`, 'm'));
    const rest = dockerfile.slice(start + 1);
    const next = rest.search(/^FROM\s/m);
    return next === -1 ? dockerfile.slice(start) : dockerfile.slice(start, start + 1 + next);
  };

  it('builds production-only trees and runs each app as a non-root user, node as PID 1, relay by default', () => {
    expect(dockerfile).toMatch(/pnpm install --offline --frozen-lockfile/);
    for (const app of ['relay-app', 'dlq-mirror', 'demo']) expect(dockerfile).toMatch(new RegExp(`pnpm deploy --legacy --prod --filter=@eventbus/${app} `));
    expect(dockerTargets.at(-1)).toBe('relay');
    for (const target of ['relay', 'dlq-mirror', 'demo']) {
      const text = stage(target);
      expect(text, target).toMatch(/^FROM runtime AS/m);
      expect(text, target).toMatch(/^USER node$/m);
      // Exec form: node itself receives SIGTERM (a shell form would put /bin/sh in between).
      expect(text, target).toMatch(/^CMD \["node", "dist\/main\.js"/m);
    }
    expect(stage('runtime')).toMatch(/EVENTBUS_MIGRATIONS_DIR=\/app\/drizzle/);
    expect(stage('runtime')).toMatch(/COPY --from=build \/out\/drizzle \/app\/drizzle/);
  });

  it('has a HEALTHCHECK on /readyz, in exec form with node (no curl), for the relay and the mirror', () => {
    for (const [target, port] of [
      ['relay', defaultPort(RELAY_ENV)],
      ['dlq-mirror', defaultPort(DLQ_MIRROR_ENV)],
    ] as const) {
      const text = stage(target);
      expect(text, target).toMatch(new RegExp(`ENV HTTP_PORT=${port}\\b`));
      expect(text, target).toMatch(new RegExp(`EXPOSE ${port}\\b`));
      const check = /HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/.exec(text);
      expect(check, target).not.toBeNull();
      const argv = JSON.parse(check![1]!) as string[];
      expect(argv.slice(0, 2)).toEqual(['node', '-e']);
      expect(argv[2]).toContain(`(process.env.HTTP_PORT||${port})+'/readyz'`);
    }
  });

  it("the health check's one-liner exits 0 on 200 from /readyz, 1 on 503 or when nothing listens", async () => {
    const argv = JSON.parse(/HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/.exec(stage('relay'))![1]!) as string[];
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const run = (httpPort: number) =>
      new Promise<number | null>((resolve) =>
        execFile(process.execPath, argv.slice(1), { env: { HTTP_PORT: String(httpPort) } }, (error) => resolve(error ? (error.code as number) : 0)),
      );
    try {
      expect(await run(port)).toBe(0);
      status = 503;
      expect(await run(port)).toBe(1);
      expect(paths).toEqual(['/readyz', '/readyz']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await run(port)).toBe(1);
  });
});

/** HTTP_PORT's default in an app's env table. */
function defaultPort(table: { HTTP_PORT: { default: string } }): string {
  return table.HTTP_PORT.default;
}
