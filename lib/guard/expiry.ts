// SPDX-License-Identifier: MIT
// Expiry times by id: a binary min-heap with lazy deletion, so setting, extending and
// removing are O(log n) and popping what is due costs only what is due, with millions of ids.

export class ExpiryQueue<V> {
  private readonly current = new Map<string, { at: number; value: V }>();
  private heapAt: number[] = [];
  private heapId: string[] = [];

  get size(): number {
    return this.current.size;
  }

  get(id: string): number | undefined {
    return this.current.get(id)?.at;
  }

  set(id: string, at: number, value: V): void {
    const old = this.current.get(id);
    this.current.set(id, { at, value });
    if (old?.at === at) return;
    this.push(at, id);
    if (this.heapAt.length > 2 * this.current.size + 1024) this.compact();
  }

  delete(id: string): boolean {
    return this.current.delete(id);
  }

  /** The earliest live expiry, or undefined. */
  next(): number | undefined {
    while (this.heapAt.length) {
      const at = this.heapAt[0]!;
      if (this.current.get(this.heapId[0]!)?.at === at) return at;
      this.pop();
    }
    return undefined;
  }

  /** Removes and returns every id due at `now`. */
  popDue(now: number): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    while (this.heapAt.length && this.heapAt[0]! <= now) {
      const at = this.heapAt[0]!;
      const id = this.heapId[0]!;
      this.pop();
      const live = this.current.get(id);
      if (live?.at !== at) continue;
      this.current.delete(id);
      out.push([id, live.value]);
    }
    return out;
  }

  private compact(): void {
    this.heapAt = [];
    this.heapId = [];
    for (const [id, { at }] of this.current) this.push(at, id);
  }

  private push(at: number, id: string): void {
    const a = this.heapAt, ids = this.heapId;
    let i = a.length;
    a.push(at);
    ids.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= at) break;
      a[i] = a[p]!;
      ids[i] = ids[p]!;
      i = p;
    }
    a[i] = at;
    ids[i] = id;
  }

  private pop(): void {
    const a = this.heapAt, ids = this.heapId;
    const lastAt = a.pop()!;
    const lastId = ids.pop()!;
    const n = a.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && a[r]! < a[l]! ? r : l;
      if (a[c]! >= lastAt) break;
      a[i] = a[c]!;
      ids[i] = ids[c]!;
      i = c;
    }
    a[i] = lastAt;
    ids[i] = lastId;
  }
}
