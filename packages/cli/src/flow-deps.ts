// The @flowctl/flow modules the CLI loads on demand (JSON codec, filter engine). Loaded lazily so
// that commands which do not print JSON or filter locally do not pay for them at startup.
import type { Flow, FlowFilter } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';

export interface JsonModule {
  /** Owns the buffer and caches of a stream of lines (one per printer or server). */
  JsonEncoder: new () => { response(r: GetFlowsResponse): string };
  encodeResponse(r: GetFlowsResponse): string;
  decodeResponse(line: string, where?: string): GetFlowsResponse;
  encodeFlow(f: Flow): string;
  decodeFlow(text: string, where?: string): Flow;
}
export interface FiltersModule {
  compileFilters(whitelist?: FlowFilter[], blacklist?: FlowFilter[]): (r: GetFlowsResponse) => boolean;
}

export async function loadJson(): Promise<JsonModule> {
  return (await import('@flowctl/flow/json')) as JsonModule;
}

export async function loadFilters(): Promise<FiltersModule> {
  return (await import('@flowctl/flow/filters')) as FiltersModule;
}
