/**
 * A small RTSP server for tests: ffmpeg encodes a fixture video in a loop into RTP (UDP, on
 * loopback) and this server hands those packets to every RTSP client over its TCP
 * connection (interleaved, as `-rtsp_transport tcp` asks). Enough RTSP for ffmpeg as a
 * client: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN. It can be stopped and
 * started again on the same port to simulate a camera outage.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RtspTestServer {
  url: string;
  port: number;
  /** Clients that have sent PLAY and not disconnected. */
  playing(): number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** `copy`: stream the file's own H.264; `nice`: the encoder's priority (benchmarks: 19). */
export async function startRtspServer(video: string, options: { port?: number; fps?: number; copy?: boolean; nice?: number } = {}): Promise<RtspTestServer> {
  let port = options.port ?? 0;
  let tcp: Server | undefined;
  let udp: UdpSocket | undefined;
  let ffmpeg: ChildProcess | undefined;
  let work: string | undefined;
  let sdp = '';
  const clients = new Set<Socket>();
  const players = new Set<Socket>();

  const start = async (): Promise<void> => {
    work = mkdtempSync(join(tmpdir(), 'rtsp-'));
    const udpPort = await freeUdpPort();
    // A 1080p keyframe arrives as a burst of a few hundred kilobytes of RTP: with the default
    // receive buffer (~200 KB) a busy machine drops part of it and the "camera" sends torn frames.
    udp = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    // Packets that arrive in one turn of the event loop go out in one writev per player instead
    // of a write each (measured: the server's CPU per simulated camera 0.35 -> 0.29 s a minute).
    const corked = new Set<Socket>();
    const uncork = () => {
      for (const c of corked) c.uncork();
      corked.clear();
    };
    udp.on('message', (packet) => {
      const header = Buffer.from([0x24, 0, (packet.length >> 8) & 0xff, packet.length & 0xff]);
      for (const c of players) {
        if (c.destroyed || c.writableLength >= 4 * 1024 * 1024) continue;
        if (!corked.has(c)) {
          if (corked.size === 0) setImmediate(uncork);
          c.cork();
          corked.add(c);
        }
        c.write(header);
        c.write(packet);
      }
    });
    await new Promise<void>((r) => udp!.bind(udpPort, '127.0.0.1', r));
    const sdpFile = join(work, 'stream.sdp');
    // Default: re-encode with a keyframe every second so a client joining mid-stream starts
    // quickly. `copy` streams the file's own H.264 unchanged (camera-like bitrate and GOP).
    const codec = options.copy
      ? ['-c:v', 'copy']
      : ['-vf', `fps=${options.fps ?? 10}`, '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(options.fps ?? 10), '-bf', '0'];
    ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-stream_loop', '-1', '-i', video, '-an', ...codec, '-f', 'rtp', '-sdp_file', sdpFile, `rtp://127.0.0.1:${udpPort}?pkt_size=1200`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let i = 0; i < 200 && !existsSync(sdpFile); i++) await new Promise((r) => setTimeout(r, 50));
    // Benchmarks run the simulated cameras' senders at a low priority once they are up: on a
    // site the cameras stream, not the machine under test.
    if (options.nice && ffmpeg.pid) setPriority(ffmpeg.pid, options.nice);
    await new Promise((r) => setTimeout(r, 100));
    sdp = readFileSync(sdpFile, 'utf8')
      .split(/\r?\n/)
      .filter((l) => l && !l.startsWith('c=') && !l.startsWith('a=control'))
      .map((l) => (l.startsWith('m=video') ? 'm=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=control:trackID=0' : l))
      .join('\r\n');
    sdp = sdp.replace(/^(s=.*)$/m, '$1\r\na=control:*') + '\r\n';
    tcp = createServer((socket) => {
      clients.add(socket);
      let buffer = '';
      socket.on('data', (data) => {
        buffer += data.toString('latin1');
        for (;;) {
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) break;
          const head = buffer.slice(0, end);
          buffer = buffer.slice(end + 4);
          handle(socket, head);
        }
      });
      const gone = () => {
        clients.delete(socket);
        players.delete(socket);
      };
      socket.on('close', gone);
      socket.on('error', gone);
    });
    await new Promise<void>((r) => tcp!.listen(port, '127.0.0.1', r));
    port = (tcp!.address() as { port: number }).port;
  };

  const handle = (socket: Socket, head: string): void => {
    const [requestLine = '', ...lines] = head.split('\r\n');
    const [method, uri] = requestLine.split(' ');
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const cseq = headers.get('cseq') ?? '0';
    const reply = (extra: string[], body = '') => void socket.write(['RTSP/1.0 200 OK', `CSeq: ${cseq}`, ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n'));
    switch (method) {
      case 'OPTIONS':
        return reply(['Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER']);
      case 'DESCRIBE':
        return reply([`Content-Base: ${uri}/`, 'Content-Type: application/sdp'], sdp);
      case 'SETUP':
        return reply(['Transport: RTP/AVP/TCP;unicast;interleaved=0-1', 'Session: 12345678;timeout=60']);
      case 'PLAY':
        reply(['Session: 12345678', 'Range: npt=0.000-']);
        players.add(socket);
        return;
      case 'GET_PARAMETER':
        return reply(['Session: 12345678']);
      case 'TEARDOWN':
        reply(['Session: 12345678']);
        players.delete(socket);
        return;
      default:
        socket.write(`RTSP/1.0 405 Method Not Allowed\r\nCSeq: ${cseq}\r\nContent-Length: 0\r\n\r\n`);
    }
  };

  const stop = async (): Promise<void> => {
    for (const c of clients) c.destroy();
    clients.clear();
    players.clear();
    if (ffmpeg && ffmpeg.exitCode === null) {
      const exited = new Promise((r) => ffmpeg!.once('exit', r));
      ffmpeg.kill('SIGKILL');
      await exited;
    }
    if (tcp) await new Promise<void>((r) => tcp!.close(() => r()));
    if (udp) await new Promise<void>((r) => udp!.close(() => r()));
    tcp = undefined;
    udp = undefined;
    ffmpeg = undefined;
    if (work) rmSync(work, { recursive: true, force: true });
  };

  await start();
  return {
    get url() {
      return `rtsp://127.0.0.1:${port}/live`;
    },
    get port() {
      return port;
    },
    playing: () => players.size,
    stop,
    start,
  };
}
