// A progress bar on stderr (cli-progress), shown only where a person watches it: stderr is a
// TTY, not --json, not CI=true, and the work is large. Otherwise every call is a no-op, so
// commands call it unconditionally.

import cliProgress from 'cli-progress';
import { formatSize } from './size.js';

/** Below this much work (bytes, or items for counts) a bar would only flicker. */
export const PROGRESS_BYTES_MIN = 16 * 2 ** 20;

export interface Progress {
  update(value: number): void;
  /**
   * Says what runs now after the bar's own work (e.g. "committing"), drawn at once: the step
   * that follows may hold the event loop (one synchronous pmsync), so no timer would draw it.
   */
  status(text: string): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  json: boolean;
  /** Unknown for a pipe: the bar then appears once `value` passes `minimum`. */
  total?: number;
  unit: 'bytes' | 'items';
  /** Work smaller than this gets no bar (default PROGRESS_BYTES_MIN for bytes, 0 for items). */
  minimum?: number;
}

export function progressShown(json: boolean): boolean {
  return process.stderr.isTTY === true && !json && process.env['CI'] !== 'true';
}

export function startProgress(options: ProgressOptions): Progress {
  const none = { update() {}, status() {}, stop() {} };
  if (!progressShown(options.json)) return none;
  const minimum = options.minimum ?? (options.unit === 'bytes' ? PROGRESS_BYTES_MIN : 0);
  if (options.total !== undefined && options.total < minimum) return none;
  let bar: cliProgress.SingleBar | undefined;
  const show = (value: number): string => (options.unit === 'bytes' ? formatSize(value) : String(value));
  return {
    update(value) {
      if (bar === undefined && value < minimum) return;
      if (bar === undefined) bar = createBar(options.label, options.total, show(options.total ?? 0), show(value));
      bar.update(options.total === undefined ? 0 : value, { done: show(value) });
    },
    status(text) {
      bar?.update({ status: `| ${text}` });
      bar?.render();
    },
    stop() {
      bar?.stop();
    },
  };
}

function createBar(label: string, total: number | undefined, totalText: string, doneText: string): cliProgress.SingleBar {
  const format = total === undefined ? `${label} {done} {status}`
    : `${label} {bar} {percentage}% | {done} of ${totalText} | ETA {eta_formatted} {status}`;
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
  bar.start(total ?? 1, 0, { done: doneText, status: '' });
  return bar;
}
