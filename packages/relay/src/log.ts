// pino to stderr, one child per subsystem (Cilium's logfields.LogSubsys).
import { destination, pino } from 'pino';
import type { Logger } from 'pino';

export const SUBSYS = 'subsys';

export function createLogger(level = process.env.FLOWCTL_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: 'flowctl-relay', level, base: undefined }, destination({ fd: 2, sync: true }));
}

export function subsys(log: Logger, name: string): Logger {
  return log.child({ [SUBSYS]: name });
}
