// The JVM workload of the real-node tests and the playground: a small HTTP service that
// registers itself in ZooKeeper as a Dubbo 3 application does, and can be told to fail.
//
//   GET  /ready  /live     200 while healthy; both hang once the app is deadlocked
//   POST /crash            exit 3 now, and at every start after (a marker under $STATE_DIR)
//   POST /exit             exit 4 now, once (the next start is a normal one)
//   POST /deadlock         two threads deadlock on two monitors; /ready and /live hang
//   POST /stop-answering   close the listening socket (the process stays)
//   GET  /work             a request's worth of work: sorts 20,000 random numbers (the benchmarks' load)
//
// Environment: PORT (8080), APP_NAME (workload), POD_IP (the address it registers),
// ZK_CONNECT (host:port; no registration without it), STATE_DIR (/tmp), CRASH_ON_START=1 (exits 3 at every start), NEVER_LISTEN=1
// (start, but never open the port), START_DELAY_SECS (take that long to start, as a big app does).
//
// Registrations (ephemeral, made again on every new session, as Dubbo and Curator do):
// - Curator x-discovery, Dubbo 3 application level: /services/<app>/<id>, JSON payload;
// - Dubbo interface level: /dubbo/<interface>/providers/<URL-encoded dubbo:// URL>.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public class Workload {
    static final String INTERFACE = "com.example.sickbay.GreetingService";
    static final Object FIRST = new Object();
    static final Object SECOND = new Object();
    static volatile boolean deadlocked = false;

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(env("PORT", "8080"));
        String app = env("APP_NAME", "workload");
        String ip = env("POD_IP", "127.0.0.1");
        Path crashMarker = Path.of(env("STATE_DIR", "/tmp"), "workload-crash-on-start");
        if ("1".equals(System.getenv("CRASH_ON_START"))) {
            System.out.println("workload: CRASH_ON_START=1, exiting 3");
            System.exit(3);
        }
        if (Files.exists(crashMarker)) {
            System.out.println("workload: crash marker present, exiting 3");
            System.exit(3);
        }
        String zk = System.getenv("ZK_CONNECT");
        if (zk != null && !zk.isEmpty()) register(zk, app, ip, port);
        int delay = Integer.parseInt(env("START_DELAY_SECS", "0"));
        if (delay > 0) {
            System.out.println("workload: starting slowly, " + delay + " s");
            Thread.sleep(delay * 1000L);
        }
        if ("1".equals(System.getenv("NEVER_LISTEN"))) {
            System.out.println("workload: started, never listening");
            Thread.sleep(Long.MAX_VALUE);
        }

        // Headers and body go out as two writes: without TCP_NODELAY each answer waits on the
        // client's delayed ACK (40 ms), which, not the work, would set the pace.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 16);
        server.createContext("/ready", ex -> healthy(ex));
        server.createContext("/live", ex -> healthy(ex));
        server.createContext("/crash", ex -> {
            Files.writeString(crashMarker, "crash\n");
            reply(ex, 200, "crashing\n");
            System.out.println("workload: told to crash");
            System.exit(3);
        });
        server.createContext("/exit", ex -> {
            reply(ex, 200, "exiting\n");
            System.out.println("workload: told to exit");
            System.exit(4);
        });
        server.createContext("/work", ex -> {
            double[] xs = new double[20_000];
            java.util.concurrent.ThreadLocalRandom r = java.util.concurrent.ThreadLocalRandom.current();
            for (int i = 0; i < xs.length; i++) xs[i] = r.nextDouble();
            java.util.Arrays.sort(xs);
            reply(ex, 200, xs[xs.length / 2] + "\n");
        });
        server.createContext("/deadlock", ex -> {
            deadlock();
            reply(ex, 200, "deadlocked\n");
        });
        server.createContext("/stop-answering", ex -> {
            reply(ex, 200, "closing\n");
            new Thread(() -> server.stop(0), "workload-stopper").start();
        });
        server.setExecutor(java.util.concurrent.Executors.newFixedThreadPool(4));
        server.start();
        System.out.println("workload " + app + " ready on " + ip + ":" + port);
        Thread.sleep(Long.MAX_VALUE);
    }

    // Healthy answers pass through the first monitor, so a deadlock makes them hang.
    static void healthy(HttpExchange ex) throws IOException {
        synchronized (FIRST) {
            reply(ex, 200, "ok\n");
        }
    }

    static void reply(HttpExchange ex, int code, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(code, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
    }

    static synchronized void deadlock() throws IOException {
        if (deadlocked) return;
        deadlocked = true;
        CountDownLatch both = new CountDownLatch(2);
        new Thread(() -> lockBoth(FIRST, SECOND, both), "sickbay-deadlock-a").start();
        new Thread(() -> lockBoth(SECOND, FIRST, both), "sickbay-deadlock-b").start();
        try {
            both.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void lockBoth(Object a, Object b, CountDownLatch both) {
        synchronized (a) {
            both.countDown();
            try {
                both.await();
            } catch (InterruptedException e) {
                return;
            }
            synchronized (b) {
                System.out.println("never");
            }
        }
    }

    static void register(String connect, String app, String ip, int port) throws Exception {
        String id = UUID.randomUUID().toString();
        String instance = "{\"name\":\"" + app + "\",\"id\":\"" + id + "\",\"address\":\"" + ip + "\",\"port\":" + port
                + ",\"sslPort\":null,\"payload\":{\"@class\":\"org.apache.dubbo.registry.zookeeper.ZookeeperInstance\",\"name\":\"" + app
                + "\",\"metadata\":{}},\"registrationTimeUTC\":" + System.currentTimeMillis() + ",\"serviceType\":\"DYNAMIC\",\"uriSpec\":null}";
        String provider = "dubbo://" + ip + ":20880/" + INTERFACE + "?application=" + app + "&interface=" + INTERFACE + "&side=provider";
        String providerNode = "/dubbo/" + INTERFACE + "/providers/" + URLEncoder.encode(provider, StandardCharsets.UTF_8);
        String instanceNode = "/services/" + app + "/" + id;
        Watcher watcher = new Watcher() {
            ZooKeeper self;
            public void process(WatchedEvent e) {
                if (e.getType() != Event.EventType.None) return;
                if (e.getState() == Event.KeeperState.SyncConnected) {
                    new Thread(() -> writeAll(), "workload-register").start();
                } else if (e.getState() == Event.KeeperState.Expired) {
                    try {
                        self = new ZooKeeper(connect, 10000, this);
                    } catch (IOException ex) {
                        System.out.println("workload: reconnect failed: " + ex);
                    }
                }
            }
            void writeAll() {
                try {
                    while (current == null) Thread.sleep(10);
                    if (self == null) self = current;
                    ensure(self, instanceNode, instance.getBytes(StandardCharsets.UTF_8));
                    ensure(self, providerNode, new byte[0]);
                    System.out.println("workload: registered " + instanceNode + " and " + providerNode);
                } catch (Exception ex) {
                    System.out.println("workload: registration failed: " + ex);
                }
            }
        };
        current = new ZooKeeper(connect, 10000, watcher);
    }

    static volatile ZooKeeper current;

    static void ensure(ZooKeeper zk, String path, byte[] data) throws Exception {
        String[] parts = path.substring(1).split("/");
        StringBuilder p = new StringBuilder();
        for (int i = 0; i < parts.length - 1; i++) {
            p.append('/').append(parts[i]);
            try {
                zk.create(p.toString(), new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            } catch (KeeperException.NodeExistsException ignored) {
            }
        }
        try {
            zk.create(path, data, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        } catch (KeeperException.NodeExistsException ignored) {
        }
    }
}
