/**
 * Imported first by main.ts, before any library: stdout carries only the command's result
 * (`--json | jq` must parse), which the CLI writes through io.stdout, never through
 * `console`. Everything that uses the global console goes to stderr instead: OpenTelemetry's
 * console span and metric exporters (OTEL_TRACES_EXPORTER=console), its diagnostic logger
 * (which keeps the console methods it finds when @opentelemetry/api loads, hence "first"),
 * a library's stray console.log.
 */
import { Console } from 'node:console';

globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
