// Distinct values counted in 128 bytes (linear counting, Whang et al. 1990): within a few percent
// up to about a thousand values, which is what alert evidence needs ("from ~950 sources").
const BITS = 1024;

export class DistinctCounter {
  private readonly bits = new Uint8Array(BITS / 8);
  private zeros = BITS;

  add(s: string): void {
    // FNV-1a: cheap, and good enough to spread addresses over 1,024 bits.
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    const b = (h >>> 0) % BITS;
    const m = 1 << (b & 7);
    if (!(this.bits[b >> 3]! & m)) {
      this.bits[b >> 3]! |= m;
      this.zeros--;
    }
  }

  /** The estimate; saturates (about 7,000) once every bit is set. */
  get estimate(): number {
    return Math.round(this.zeros === 0 ? BITS * Math.log(BITS) : -BITS * Math.log(this.zeros / BITS));
  }
}
