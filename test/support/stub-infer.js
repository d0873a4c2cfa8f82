/** A stand-in for the infer service: answers its HTTP contract with a canned detection and records what it was asked. */
import { createServer } from 'node:http';
export async function startStubInfer() {
    const stub = { url: '', requests: [], delayMs: 0, failWith: undefined, detection: { class: 'car', confidence: 0.9, carBrand: 'Honda' }, close: async () => undefined };
    const server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const m = /^\/v1\/models\/([^/]+)\/infer$/.exec(url.pathname);
        let bytes = 0;
        req.on('data', (d) => (bytes += d.length));
        req.on('end', () => {
            if (!m || req.method !== 'POST') {
                res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"NOT_FOUND","message":"no"}');
                return;
            }
            stub.requests.push({ modelId: decodeURIComponent(m[1]), query: Object.fromEntries(url.searchParams), bytes, at: Date.now() });
            setTimeout(() => {
                if (stub.failWith) {
                    res.writeHead(stub.failWith, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify({ code: 'STUB_FAILURE', message: 'stub failure' }));
                    return;
                }
                const detection = stub.detection;
                res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ modelId: m[1], detection, result: detection ? { class: 'car', confidence: 0.9, bbox: [10, 10, 50, 50], detections: [{ class: 'car', confidence: 0.9, bbox: [10, 10, 50, 50], id: null }] } : null, actions: [], timings: {} }));
            }, stub.delayMs);
        });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    stub.url = `http://127.0.0.1:${server.address().port}`;
    stub.close = () => new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
    });
    return stub;
}
//# sourceMappingURL=stub-infer.js.map