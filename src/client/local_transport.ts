// Exclusive mode's transport: the pool's kernel runs in this process and each request is a
// function call. The request goes through the same argument checks as one read off regiond's
// socket (parseRequest) and the same system calls, with this process's credentials; results
// are copied as the wire would copy them, so no caller holds the kernel's own objects.

import type { FileDevice } from '../pm/file_device.js';
import { RegionError } from '../errors.js';
import type { Client } from '../syscall/client_record.js';
import { parseRequest, type Op } from '../wire/protocol.js';
import type { Syscalls } from '../syscall/syscalls.js';
import type { FdResponse, KernelHost, Response, Transport } from './transport.js';
import fs from 'node:fs';

const NO_DATA = new Uint8Array(0);

export class LocalTransport implements Transport {
  readonly mode = 'exclusive' as const;
  readonly server: KernelHost | null = null;
  private open = true;

  constructor(
    private readonly poolPath: string,
    private readonly syscalls: Syscalls,
    private readonly client: Client,
    /** Closed with the transport: the kernel's pool lock goes with it. */
    private readonly device: FileDevice,
  ) {}

  get closed(): boolean {
    return !this.open;
  }

  request<T>(op: Op, args: Record<string, unknown> = {}, data?: Uint8Array): Response<T> {
    const { fd, ...response } = this.exchange<T>(op, args, data);
    if (fd !== undefined) fs.closeSync(fd);
    return response;
  }

  requestFd<T>(op: Op, args: Record<string, unknown> = {}): FdResponse<T> {
    const { fd, ...response } = this.exchange<T>(op, args);
    if (fd === undefined) throw new RegionError('PROTOCOL', `the kernel's reply to ${op} passed no descriptor`);
    return { ...response, fd };
  }

  private exchange<T>(op: Op, args: Record<string, unknown>, data?: Uint8Array): Response<T> & { fd?: number } {
    if (!this.open) throw new RegionError('CLOSED', `pool ${this.poolPath} is closed`);
    if (op === 'close') {
      this.syscalls.forget(this.client);
      return { result: null as T, data: NO_DATA };
    }
    const request = parseRequest({ id: 0, op, ...args }, data ?? NO_DATA);
    const reply = this.syscalls.call(this.client, request);
    return { result: structuredClone(reply.result ?? null) as T, data: reply.data ?? NO_DATA, fd: reply.fd };
  }

  /** Stores not pmsynced are dropped, as in a crash; then the pool's lock is released. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      this.syscalls.forget(this.client);
      this.syscalls.closeAll();
    } finally {
      this.device.close();
    }
  }
}
