export interface RtspTestServer {
    url: string;
    port: number;
    /** Clients that have sent PLAY and not disconnected. */
    playing(): number;
    stop(): Promise<void>;
    start(): Promise<void>;
}
export declare function startRtspServer(video: string, options?: {
    port?: number;
    fps?: number;
    copy?: boolean;
}): Promise<RtspTestServer>;
