// Colour is decided once, from --color and whether stdout is a terminal; every printer uses this
// one chalk instance so that `--color never` really means no escape codes anywhere.
import { Chalk, type ChalkInstance } from 'chalk';

export type ColorMode = 'auto' | 'always' | 'never';

export function parseColorMode(v: string): ColorMode {
  if (v === 'auto' || v === 'always' || v === 'never') return v;
  throw new Error(`invalid --color value "${v}": expected auto, always or never`);
}

let instance: ChalkInstance = new Chalk({ level: 0 });

export function configureColors(mode: ColorMode, isTTY: boolean): ChalkInstance {
  const on = mode === 'always' || (mode === 'auto' && isTTY && !process.env.NO_COLOR);
  instance = new Chalk({ level: on ? 1 : 0 });
  return instance;
}

export function colors(): ChalkInstance {
  return instance;
}
