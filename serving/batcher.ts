interface Pending<I, O> {
  inputs: readonly I[];
  resolve: (out: O[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Dynamic batching: requests that arrive within `maxDelayMs` of each other (or until `maxSize`
 * inputs are queued) share one model run. Off by default — see docs/benchmarks.md.
 */
export class Batcher<I, O> {
  readonly maxSize: number;
  private readonly maxDelayMs: number;
  private readonly run: (inputs: readonly I[]) => Promise<O[]>;
  private queue: Pending<I, O>[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(run: (inputs: readonly I[]) => Promise<O[]>, opts: { maxSize: number; maxDelayMs: number }) {
    this.run = run;
    this.maxSize = opts.maxSize;
    this.maxDelayMs = opts.maxDelayMs;
  }

  submit(inputs: readonly I[]): Promise<O[]> {
    return new Promise<O[]>((resolve, reject) => {
      if (this.queued + inputs.length > this.maxSize) this.flush();
      this.queue.push({ inputs, resolve, reject });
      this.queued += inputs.length;
      if (this.queued >= this.maxSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.queued = 0;
    const all = batch.flatMap((p) => p.inputs);
    this.run(all).then(
      (out) => {
        let offset = 0;
        for (const p of batch) {
          p.resolve(out.slice(offset, offset + p.inputs.length));
          offset += p.inputs.length;
        }
      },
      (err) => {
        for (const p of batch) p.reject(err);
      },
    );
  }
}
