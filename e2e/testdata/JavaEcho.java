// A Java HTTP server and client with the JDK's defaults (run as a
// single-file program: java JavaEcho.java ...), for the dual-stack tests.
//
//   server PORT     listens with no bind address (on ::, dual-stack, when
//                   the JVM finds IPv6), prints "LISTENING", answers each
//                   GET with BODY_BYTES and the client address it sees,
//                   for at most 60 s
//   client ADDR PORT N
//                   N GETs with java.net.http (one pooled connection) and
//                   N with HttpURLConnection and "Connection: close" (a
//                   connection each); prints "OK <count>" and the
//                   addresses the server saw
import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.TreeSet;

public class JavaEcho {
    static final int BODY_BYTES = 64 << 10;

    public static void main(String[] args) throws Exception {
        if (args[0].equals("server")) {
            server(Integer.parseInt(args[1]));
        } else {
            client(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3]));
        }
    }

    static void server(int port) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 64);
        server.createContext("/", exchange -> {
            String seen = "client=" + exchange.getRemoteAddress().getAddress().getHostAddress() + "\n";
            byte[] head = seen.getBytes();
            byte[] body = new byte[BODY_BYTES];
            System.arraycopy(head, 0, body, 0, head.length);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        System.out.println("LISTENING on " + server.getAddress());
        Thread.sleep(60_000);
        server.stop(0);
    }

    static void client(String addr, int port, int n) throws Exception {
        String url = "http://" + addr + ":" + port + "/";
        TreeSet<String> seen = new TreeSet<>();
        int ok = 0;
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        for (int i = 0; i < n; i++) {
            HttpRequest req = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build();
            HttpResponse<byte[]> resp = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
            if (resp.statusCode() == 200 && resp.body().length == BODY_BYTES) {
                ok++;
                seen.add(firstLine(resp.body()));
            }
        }
        for (int i = 0; i < n; i++) {
            HttpURLConnection conn = (HttpURLConnection) new URL(url).openConnection();
            conn.setRequestProperty("Connection", "close");
            conn.setConnectTimeout(5000);
            conn.setReadTimeout(10000);
            try (InputStream in = conn.getInputStream()) {
                byte[] body = in.readAllBytes();
                if (conn.getResponseCode() == 200 && body.length == BODY_BYTES) {
                    ok++;
                    seen.add(firstLine(body));
                }
            }
        }
        System.out.println("OK " + ok + " of " + (2 * n) + " seen " + seen);
    }

    static String firstLine(byte[] body) {
        int end = 0;
        while (end < body.length && body[end] != '\n') {
            end++;
        }
        return new String(body, 0, end);
    }
}
