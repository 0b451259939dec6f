export { BpfError } from './errors.js';
export {
  BpfObject,
  BpfProgram,
  BpfMap,
  BpfLink,
  probeFeatures,
  probeProgType,
  probeMapType,
  probeHelper,
  possibleCpus,
  setLogger,
  closeAll,
  type Direction,
  type TcAttachOptions,
  type XdpAttachOptions,
  type TestRunOptions,
  type TestRunResult,
  type UpdateFlag,
  type OpenOptions,
  type RingBufferOptions,
  type Logger,
} from './object.js';
export { RingBuffer, forEachRecord, records, iterateRing, type RingBatch, type RingCallback } from './ring-buffer.js';
export { addonCandidates, type Features, type NativeMapInfo as MapInfo, type NativeVariable as VariableInfo } from './native.js';
