// An HTTP proxy in front of a test server (s3rver) that counts the body bytes of its successful
// answers per request path: what a client really transferred, not what it kept. Headers pass
// unchanged, Host included, so signed S3 requests still verify. With `ignoreRange` it answers as
// a server that ignores Range does: a ranged GET is sent on without its range (and unsigned,
// which s3rver lets read), so the whole object comes back, 200.
import http from 'node:http';

export interface CountingProxy {
  endpoint: string;
  /** body bytes of 2xx answers to requests for `urlPath` so far */
  served(urlPath: string): number;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string, { ignoreRange = false } = {}): Promise<CountingProxy> {
  const to = new URL(target);
  const served = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', to).pathname;
    const headers = { ...req.headers };
    if (ignoreRange && headers.range) for (const h of ['range', 'authorization', 'x-amz-date', 'x-amz-content-sha256']) delete headers[h];
    const upstream = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (answer) => {
      const status = answer.statusCode ?? 502;
      res.writeHead(status, answer.headers);
      if (status < 300) answer.on('data', (chunk: Buffer) => served.set(urlPath, (served.get(urlPath) ?? 0) + chunk.length));
      answer.pipe(res);
    });
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    served: (urlPath) => served.get(urlPath) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
