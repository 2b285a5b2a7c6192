// The facts a result needs beside it: CPU and its flush instruction, kernel, the file systems
// of the pool and of the ordinary scratch directory (types only, never paths), and the
// versions of Node, of this package and of every peer.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addon } from '../src/arch/addon.js';

export interface Machine {
  date: string;
  host: string;
  cpu: { model: string; cores: number; flushInstruction: string; virtualized: boolean };
  memoryBytes: number;
  kernel: string;
  fileSystems: { pool: string; disk: string | undefined };
  node: string;
  versions: Record<string, string>;
}

const FS_NAMES: Record<number, string> = {
  0x01021994: 'tmpfs',
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs',
  0x6969: 'nfs',
  0x65735546: 'fuse',
};

export function fileSystemOf(dir: string): string {
  const type = fs.statfsSync(dir).type;
  return FS_NAMES[type] ?? `type 0x${type.toString(16)}`;
}

export function machineFacts(repoRoot: string, dirs: { tmpfs: string; disk: string | undefined }, peerVersions: Record<string, string>): Machine {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpu: {
      model: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      flushInstruction: addon.flushInstruction(),
      virtualized: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    },
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    fileSystems: { pool: fileSystemOf(dirs.tmpfs), disk: dirs.disk === undefined ? undefined : fileSystemOf(dirs.disk) },
    node: process.version,
    versions: { 'region-system': ownVersion(repoRoot), ...peerVersions },
  };
}

function ownVersion(repoRoot: string): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] });
  if (head.status !== 0) return manifest.version;
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] });
  const suffix = dirty.status === 0 && dirty.stdout.toString().trim() !== '' ? ', modified' : '';
  return `${manifest.version} (${head.stdout.toString().trim()}${suffix})`;
}
