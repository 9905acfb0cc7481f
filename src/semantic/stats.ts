/*
 * Latency figures for SEMINFO: a count, a mean and percentiles over the most
 * recent samples (a fixed ring, so memory is bounded and old traffic ages out).
 */
const RING = 1024;

/** A LatencyStats as SEMINFO shows it (ms). */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p99: number;
}

export class LatencyStats {
  private readonly ring = new Float64Array(RING);
  private n = 0;
  private sum = 0;

  record(ms: number): void {
    this.ring[this.n % RING] = ms;
    this.n++;
    this.sum += ms;
  }

  get count(): number {
    return this.n;
  }

  /** { count, mean, p50, p99 } in milliseconds; percentiles over the last 1024 samples. */
  summary(): LatencySummary {
    const k = Math.min(this.n, RING);
    if (k === 0) return { count: 0, mean: 0, p50: 0, p99: 0 };
    const sorted = Array.from(this.ring.subarray(0, k)).sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(k - 1, Math.floor(q * k))]!;
    return { count: this.n, mean: this.sum / this.n, p50: at(0.5), p99: at(0.99) };
  }
}

export function since(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
