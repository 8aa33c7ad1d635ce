/**
 * Awaits every promise (so nothing is still running when the caller cleans up after a
 * failure), then throws the first failure, if any. Promise.all would return at the first
 * rejection with the others still running.
 */
export async function settled<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
