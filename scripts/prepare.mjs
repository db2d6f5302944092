/**
 * npm's prepare (after npm install / npm ci): builds the prebuilt runbooks (scripts/build.mts) and never fails the
 * install. Plain JavaScript that registers tsx itself: npm applies this project's .npmrc (which adds the loader) only
 * when it runs inside the project, not when another folder installs this one.
 */
try {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./build.mts');
} catch (e) {
  process.stderr.write(
    `warning: the runbooks were not prebuilt (${String(e?.message ?? e).split('\n')[0]})\n  fix: npm run build; until then they run from their sources (slower to start)\n`,
  );
}
