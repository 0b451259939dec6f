// A Map bounded by entry count that forgets the least recently used entry when full: the state a
// detector keeps per source or destination, so a flood of spoofed addresses costs a fixed amount.
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  /** Entries forgotten to make room (the detector's overflow counter). */
  evicted = 0;

  constructor(
    readonly max: number,
    private readonly onEvict?: (v: V) => void,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** The entry, now the most recently used. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  /** The entry, created with `make` when absent (evicting the least recently used one when full). */
  getOrCreate(key: K, make: () => V): V {
    const v = this.get(key);
    if (v !== undefined) return v;
    if (this.map.size >= this.max) {
      const [oldest, old] = this.map.entries().next().value as [K, V];
      this.map.delete(oldest);
      this.evicted++;
      this.onEvict?.(old);
    }
    const n = make();
    this.map.set(key, n);
    return n;
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }
}
