// Node skips environment cleanup hooks on process.exit() and on fatal signals, but TC filters and
// qdiscs are netlink objects that outlive the process. So: close everything on 'exit', and on
// SIGINT/SIGTERM/SIGHUP when nobody else handles the signal, then die by that signal as before.
import type { NativeAddon } from './native.js';

let installed = false;

export function installExitCleanup(addon: NativeAddon): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => addon.closeAll());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      // Another listener (the agent's graceful shutdown) owns the exit; 'exit' still cleans up.
      if (process.listenerCount(sig) > 1) return;
      addon.closeAll();
      process.removeListener(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}
