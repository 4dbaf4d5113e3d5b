// SPDX-License-Identifier: MIT
/**
 * Interleaves several async iterables as their values arrive, tagging each with its source.
 * Ends when every source has ended; returning early (break) asks every source to return
 * without waiting for it: close the probes behind them (timelines() does).
 *
 * @example
 * for await (const { source, value } of merge({ conns: connections(), pkts: packets({ interfaces: ['lo'] }) })) ...
 */
export async function* merge<T extends Record<string, AsyncIterable<unknown>>>(
  sources: T,
): AsyncIterableIterator<{ [K in keyof T]: { source: K; value: T[K] extends AsyncIterable<infer V> ? V : never } }[keyof T]> {
  type Item = { [K in keyof T]: { source: K; value: T[K] extends AsyncIterable<infer V> ? V : never } }[keyof T];
  const iterators = new Map<keyof T, AsyncIterator<unknown>>();
  for (const key of Object.keys(sources) as Array<keyof T>) iterators.set(key, sources[key]![Symbol.asyncIterator]());
  const pending = new Map<keyof T, Promise<{ key: keyof T; result: IteratorResult<unknown> }>>();
  const pull = (key: keyof T): void => {
    pending.set(key, iterators.get(key)!.next().then((result) => ({ key, result })));
  };
  for (const key of iterators.keys()) pull(key);
  try {
    while (pending.size > 0) {
      const { key, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(key);
        iterators.delete(key);
        continue;
      }
      pull(key);
      yield { source: key, value: result.value } as Item;
    }
  } finally {
    // Not awaited: an async generator runs return() only after its pending next() settles,
    // which for an idle probe is never. The caller closes the probes behind the sources (or
    // their signal does); that settles the reads and the queued returns then run.
    for (const it of iterators.values()) void it.return?.()?.catch(() => undefined);
  }
}
