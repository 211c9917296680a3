import pino from 'pino';
export type { Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

/**
 * JSON lines by default (for collectors); `pretty` is a compact human form for
 * terminals, produced without a worker thread so that logs are never lost on exit.
 */
export function createLogger(opts: { level?: string; format?: LogFormat; destination?: NodeJS.WritableStream | number } = {}): pino.Logger {
  const level = opts.level ?? 'info';
  const dest = opts.destination ?? 1;
  const stream =
    typeof dest === 'number' ? pino.destination({ dest, sync: true }) : (dest as pino.DestinationStream);
  if (opts.format === 'pretty') {
    return pino(
      { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
      prettyStream(stream),
    );
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, stream);
}

/** `2026-11-25T18:00:00.000Z info imap session ended user=… bytes_in=…` */
function prettyStream(out: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { time, level, msg, ...rest } = rec;
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${String(time)} ${String(level).padEnd(5)} ${String(msg)}${fields ? ' ' + fields : ''}\n`);
    },
  };
}
