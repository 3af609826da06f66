import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// The packages as a user gets them: `pnpm pack` every publishable package (workspace:*
// rewritten to 0.1.0), then `npm install` the tarballs into a copy of examples/order-service,
// outside the workspace. Shared by apps/cli/test/packed-install.int.test.ts and
// `pnpm bench --only installed-relay`, so both measure the same install.

const run = promisify(execFile);

/** The repository root (this file is in packages/dev-services/src or dist). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The example service installed from the tarballs. */
export const EXAMPLE_DIR = join(REPO_ROOT, 'examples/order-service');
/** Every package a user installs, by directory; dev-services, the demo and the bench stay private. */
export const PUBLISHED_PACKAGE_DIRS: readonly string[] = [
  'packages/core',
  'packages/contracts',
  'packages/kafka',
  'packages/outbox',
  'packages/producer',
  'packages/consumer',
  'packages/relay',
  'packages/replay',
  'packages/schema',
  'packages/monitor',
  'packages/telemetry',
  'packages/app-runtime',
  'packages/dead-letters',
  'packages/console',
  'packages/audit',
  'apps/relay',
  'apps/dlq-mirror',
  'apps/cli',
];
/** The third-party packages a service installs itself, which the eventbus packages share with it (peer dependencies). */
export const SERVICE_PEERS = ['drizzle-orm', 'pg', 'kafkajs', '@opentelemetry/api'] as const;
export type ServicePeer = (typeof SERVICE_PEERS)[number];

export type PackedInstallErrorCode =
  /** A command (pnpm pack, npm install, npm view, tar) failed; the message has its output. */
  | 'COMMAND_FAILED'
  /** Fewer tarballs than published packages: a pack wrote nothing, or two packages share a name. */
  | 'PACK_INCOMPLETE'
  /** No published version satisfies every range the packages declare for a peer. */
  | 'NO_VERSION_IN_RANGE';

/** Every failure of packing and installing, with a closed `code`. */
export class PackedInstallError extends Error {
  override readonly name = 'PackedInstallError';
  constructor(
    readonly code: PackedInstallErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Runs a command and returns its stdout; a failure carries the output (npm and tsc explain themselves there). */
export async function runCommand(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new PackedInstallError('COMMAND_FAILED', `${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: error });
  }
}

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** The published packages as tarballs. */
export interface PackedPackages {
  /** Package name → absolute path of its tarball. */
  tarballs: Map<string, string>;
  /** Package name → its packed package.json (workspace:* already rewritten). */
  manifests: Map<string, Manifest>;
}

/**
 * `pnpm pack`s every published package into `dest`. The packages must be built (dist/ is what
 * is packed); @eventbus/kafka's prepack writes the patch-package copy of the kafkajs patch.
 */
export async function packPublishedPackages(dest: string): Promise<PackedPackages> {
  await mkdir(dest, { recursive: true });
  // One pnpm process for every package (`pnpm -r pack`): a `pnpm pack` per package took about
  // ten times as long, most of it each process' own start. The same files (dependencies in sorted order).
  const filters = PUBLISHED_PACKAGE_DIRS.flatMap((dir) => ['--filter', `./${dir}`]);
  await runCommand('pnpm', ['--recursive', ...filters, 'pack', '--pack-destination', dest, '--workspace-concurrency', '4'], { cwd: REPO_ROOT });
  const tarballs = new Map<string, string>();
  const manifests = new Map<string, Manifest>();
  for (const file of await readdir(dest)) {
    const manifest = JSON.parse(await runCommand('tar', ['xzf', join(dest, file), '-O', 'package/package.json'], { cwd: dest })) as Manifest;
    tarballs.set(manifest.name, join(dest, file));
    manifests.set(manifest.name, manifest);
  }
  if (tarballs.size !== PUBLISHED_PACKAGE_DIRS.length) {
    throw new PackedInstallError(
      'PACK_INCOMPLETE',
      `${tarballs.size} tarballs in ${dest} for ${PUBLISHED_PACKAGE_DIRS.length} published packages: ${[...tarballs.keys()].join(', ')}`,
    );
  }
  return { tarballs, manifests };
}

export interface InstallExampleOptions {
  /** Versions to install instead of the example's own pins (e.g. the lowest of the peers' ranges). */
  versions?: Partial<Record<string, string>>;
  /** `npm install --omit=dev`: no TypeScript or drizzle-kit, for a run that only starts the installed packages. */
  omitDev?: boolean;
}

/**
 * Copies examples/order-service (without node_modules and dist) to `dir` and `npm install`s it
 * with every @eventbus package, direct or transitive, from its tarball; third-party packages
 * come from the registry (the shared npm cache makes a repeated install fast). The example's
 * postinstall applies the kafkajs patch @eventbus/kafka ships, with patch-package.
 */
export async function installExample(packed: PackedPackages, dir: string, options: InstallExampleOptions = {}): Promise<void> {
  await cp(EXAMPLE_DIR, dir, { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) });
  // The example names the packages by version, as from a registry.
  const fromTarball = Object.fromEntries([...packed.tarballs].map(([name, path]) => [name, `file:${path}`]));
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; overrides?: Record<string, string> };
  for (const name of Object.keys(pkg.dependencies)) {
    if (!name.startsWith('@eventbus/')) continue;
    const tarball = fromTarball[name];
    if (!tarball) throw new PackedInstallError('PACK_INCOMPLETE', `the example depends on ${name}, which is not among the packed packages`);
    pkg.dependencies[name] = tarball;
  }
  for (const [name, version] of Object.entries(options.versions ?? {})) if (version) pkg.dependencies[name] = version;
  pkg.overrides = fromTarball;
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  await runCommand('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...(options.omitDev ? ['--omit=dev'] : [])], {
    cwd: dir,
  });
}

/** The lowest and highest published version of each service peer that satisfies every range the packed packages declare for it. */
export interface PeerVersionEnds {
  lowest: Record<ServicePeer, string>;
  highest: Record<ServicePeer, string>;
  /** Each peer's ranges as declared (peerDependencies and dependencies of the packed packages). */
  ranges: Record<ServicePeer, string[]>;
}

/** Compares x.y.z versions numerically (npm view lists no pre-releases for a plain range). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/**
 * The two ends of what the packages claim for each service peer, from the registry (`npm view
 * <name>@<range> version`, one call per distinct range): a service may install any version in
 * the intersection of the ranges, so the tests install its lowest and its highest.
 */
export async function peerVersionEnds(packed: PackedPackages): Promise<PeerVersionEnds> {
  const ends = { lowest: {}, highest: {}, ranges: {} } as PeerVersionEnds;
  await Promise.all(
    SERVICE_PEERS.map(async (peer) => {
      const ranges = new Set<string>();
      for (const m of packed.manifests.values()) {
        for (const range of [m.peerDependencies?.[peer], m.dependencies?.[peer]]) if (range) ranges.add(range);
      }
      // Every range's look-up at once: each is mostly a wait for the registry.
      const matches = await Promise.all(
        [...ranges].map(async (range) => {
          const out = (await runCommand('npm', ['view', `${peer}@${range}`, 'version', '--json'], { cwd: REPO_ROOT })).trim();
          // One match prints a string, several an array, none nothing.
          return out ? ([JSON.parse(out)].flat() as string[]) : [];
        }),
      );
      let allowed: string[] | undefined;
      for (const versions of matches) allowed = allowed ? allowed.filter((v) => versions.includes(v)) : versions;
      if (!allowed?.length)
        throw new PackedInstallError(
          'NO_VERSION_IN_RANGE',
          `no published version of ${peer} satisfies every declared range: ${[...ranges].join(', ') || '(none declared)'}`,
        );
      allowed.sort(compareVersions);
      ends.lowest[peer] = allowed[0]!;
      ends.highest[peer] = allowed[allowed.length - 1]!;
      ends.ranges[peer] = [...ranges];
    }),
  );
  return ends;
}
