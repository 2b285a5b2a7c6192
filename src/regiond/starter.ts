// The starter: how a synchronous client starts a regiond it cannot wait for.
//
// The client runs `node starter.js POOL [regiond options]` with spawnSync. The starter spawns
// `node regiond.js --serve POOL ... --report-fd 3` detached (its own session, stdin/out/err on
// /dev/null, cwd /), waits for regiond's one-line report on fd 3 (ready, served by another
// regiond, busy, or an error such as CORRUPT), prints that line and exits; regiond goes on
// alone. So the client learns why a start failed instead of timing out, and never waits for
// the daemon itself. Imports nothing of the region system, to start fast.
//
// Without arguments it exits quietly.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REGIOND = fileURLToPath(new URL('./regiond.js', import.meta.url));
const REPORT_FD = 3;

function start(poolPath: string, options: string[], timeoutMs: number): void {
  const child = spawn(process.execPath, [REGIOND, '--serve', poolPath, ...options, '--report-fd', String(REPORT_FD)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    cwd: '/',
  });
  let text = '';
  let done = false;
  const finish = (line: string): void => {
    if (done) return;
    done = true;
    fs.writeSync(1, `${line}\n`);
    child.unref();
    process.exit(0);
  };
  const failed = (message: string): void => finish(JSON.stringify({ state: 'error', code: 'IO', message }));
  const timer = setTimeout(() => finish(JSON.stringify({ state: 'error', code: 'TIMEOUT', message: `regiond did not report within ${timeoutMs} ms` })), timeoutMs);
  timer.unref();
  const report = child.stdio[REPORT_FD] as NodeJS.ReadableStream;
  report.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    const newline = text.indexOf('\n');
    if (newline >= 0) finish(text.slice(0, newline));
  });
  report.on('end', () => failed(`regiond exited before it reported${text.length > 0 ? `: ${text}` : ''}; run \`regions daemon -p ${poolPath}\` to see why`));
  child.on('error', (error) => failed(`could not run regiond: ${error.message}`));
}

const [poolPath, timeout, ...options] = process.argv.slice(2);
if (poolPath !== undefined && process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  start(poolPath, options, Number(timeout));
}
