// The real Hubble CLI for interop tests. vitest.config.ts finds it (scripts/find-hubble.sh: $HUBBLE,
// `hubble` on PATH, ../shared/tools/hubble) and sets $HUBBLE; tests that run it carry the tag
// 'hubble', which skips them when none was found.
export function hubbleCli(): string {
  const h = process.env.HUBBLE;
  if (!h) throw new Error("no Hubble CLI: a test that runs it must carry { tags: ['hubble'] } (see vitest.config.ts)");
  return h;
}
