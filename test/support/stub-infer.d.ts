export interface StubRequest {
    modelId: string;
    query: Record<string, string>;
    bytes: number;
    at: number;
}
export interface StubInfer {
    url: string;
    requests: StubRequest[];
    /** Milliseconds to wait before answering. */
    delayMs: number;
    /** Status to answer instead of 200 (e.g. 429, 503). */
    failWith: number | undefined;
    detection: Record<string, unknown> | null;
    close(): Promise<void>;
}
export declare function startStubInfer(): Promise<StubInfer>;
