import { addressBlock } from './penalty';

/**
 * Connection limits, in total and per client address (an IPv6 client per
 * /64), counted over every listener of the server. A connection is counted
 * from accept (after its PROXY header: the real client) until its socket
 * closes, whatever phase it is in.
 */
export class ConnectionGate {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(private limits: { maxConnections: number; maxConnectionsPerAddress: number }) {}

  /** New limits apply to new connections (SIGHUP). */
  setLimits(limits: { maxConnections: number; maxConnectionsPerAddress: number }): void {
    this.limits = limits;
  }

  /** Count a connection in, or refuse it ('total' or 'address' says which limit). */
  acquire(address: string): { ok: true; release: () => void } | { ok: false; limit: 'total' | 'address' } {
    if (this.total >= this.limits.maxConnections) return { ok: false, limit: 'total' };
    const key = addressBlock(address);
    const n = this.perAddress.get(key) ?? 0;
    if (n >= this.limits.maxConnectionsPerAddress) return { ok: false, limit: 'address' };
    this.total++;
    this.perAddress.set(key, n + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perAddress.get(key) ?? 1) - 1;
        if (left > 0) this.perAddress.set(key, left);
        else this.perAddress.delete(key);
      },
    };
  }

  get open(): number {
    return this.total;
  }
}
