import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.LockSupport;

/**
 * A stand-in for Apache Kafka in `slim bench --fixed-load`: a broker that
 * appends produced records to a log of segment files and serves them to a
 * consumer by long-polled fetches (sent with FileChannel.transferTo, that
 * is sendfile, as Kafka does), and a client that runs a producer at a fixed
 * rate and a consumer, and reports end-to-end latency percentiles.
 *
 * <pre>
 *   java SlimKafka broker ADDR PORT LOGDIR
 *   java SlimKafka client ADDR PORT RATE WARMUP_S DURATION_S RECORD_BYTES DRAIN_S
 * </pre>
 *
 * Wire format, big-endian. A connection starts with one byte: 'P' for a
 * producer, 'C' for a consumer, which the broker answers with the log's end
 * offset (long), where the consumer starts. Produce: int n, then n bytes of records;
 * the broker appends them and answers with the log's end offset (long).
 * Fetch: long offset, int maxBytes; the broker answers int n and n bytes of
 * the log from offset, waiting up to 100 ms for data (n = 0 if none came).
 * A record: int length (of what follows), long due time (System.nanoTime
 * of when it was due to be sent), long send time, long sequence number,
 * padding.
 *
 * The client prints "slim-bench: measure start" and "slim-bench: measure
 * end" around the measured part and then one JSON line, as slim-loadgen
 * does. RATE 0 produces as fast as the broker acknowledges (the peak).
 */
public final class SlimKafka {
    static final String MARK = "slim-bench: measure ";

    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("broker")) {
            new Broker(new InetSocketAddress(args[1], Integer.parseInt(args[2])), Paths.get(args[3])).run();
            return;
        }
        if (args.length == 8 && args[0].equals("client")) {
            Client.Settings s = new Client.Settings(new InetSocketAddress(args[1], Integer.parseInt(args[2])),
                    Double.parseDouble(args[3]), Double.parseDouble(args[4]), Double.parseDouble(args[5]),
                    Integer.parseInt(args[6]), Double.parseDouble(args[7]));
            System.exit(new Client(s).run(System.out));
        }
        System.err.println("usage: SlimKafka broker ADDR PORT LOGDIR");
        System.err.println("       SlimKafka client ADDR PORT RATE WARMUP_S DURATION_S RECORD_BYTES DRAIN_S");
        System.exit(2);
    }

    /** A log-linear histogram of nanoseconds, as slim-loadgen's hist.c. */
    static final class Histogram {
        static final int SUB_BITS = 7, EXACT = 1 << SUB_BITS, HALF = EXACT / 2, MAX_BIT = 42;
        static final int BUCKETS = EXACT + (MAX_BIT - SUB_BITS + 1) * HALF;
        final long[] bucket = new long[BUCKETS];
        long count, max;
        double sum;

        static int index(long v) {
            if (v < EXACT) return (int) Math.max(v, 0);
            int msb = 63 - Long.numberOfLeadingZeros(v);
            if (msb > MAX_BIT) return BUCKETS - 1;
            int shift = msb - (SUB_BITS - 1);
            return EXACT + (msb - SUB_BITS) * HALF + (int) ((v >>> shift) - HALF);
        }

        static long value(int index) {
            if (index < EXACT) return index;
            int above = index - EXACT, msb = SUB_BITS + above / HALF, shift = msb - (SUB_BITS - 1);
            long top = HALF + above % HALF;
            return (top << shift) + (1L << shift) / 2;
        }

        void add(long v) {
            if (v < 0) v = 0;
            bucket[index(v)]++;
            count++;
            sum += v;
            max = Math.max(max, v);
        }

        long percentile(double pct) {
            if (count == 0) return 0;
            long rank = Math.min(count, Math.max(1, (long) Math.ceil(pct / 100.0 * count)));
            long seen = 0;
            for (int i = 0; i < BUCKETS; i++) {
                seen += bucket[i];
                if (seen >= rank) return Math.min(value(i), max);
            }
            return max;
        }
    }

    // ---- broker ----------------------------------------------------------

    /** The log: segment files of at most SEGMENT bytes; a produce batch never spans two. */
    static final class Log {
        static final long SEGMENT = 16 << 20;
        final Path dir;
        final List<Segment> segments = new ArrayList<>();
        long end;

        static final class Segment {
            final long base;
            final Path path;
            final FileChannel file;
            long size;

            Segment(long base, Path path) throws IOException {
                this.base = base;
                this.path = path;
                this.file = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                        StandardOpenOption.WRITE);
            }
        }

        Log(Path dir) throws IOException {
            this.dir = dir;
            roll();
        }

        void roll() throws IOException {
            segments.add(new Segment(end, dir.resolve(String.format("%020d.log", end))));
        }

        long append(ByteBuffer records) throws IOException {
            Segment last = segments.get(segments.size() - 1);
            if (last.size > 0 && last.size + records.remaining() > SEGMENT) {
                roll();
                last = segments.get(segments.size() - 1);
            }
            while (records.hasRemaining()) {
                int n = last.file.write(records, last.size);
                last.size += n;
                end += n;
            }
            return end;
        }

        Segment find(long offset) {
            for (Segment s : segments) {
                if (offset >= s.base && offset < s.base + s.size) return s;
            }
            return null;
        }

        /** Deletes the segments wholly before offset, which the consumer has read. */
        void release(long offset) throws IOException {
            while (segments.size() > 1 && segments.get(0).base + segments.get(0).size <= offset) {
                Segment s = segments.remove(0);
                s.file.close();
                Files.deleteIfExists(s.path);
            }
        }
    }

    static final class Broker {
        static final long FETCH_WAIT_NANOS = 100_000_000L;
        final InetSocketAddress address;
        final Log log;
        final Selector selector;
        final List<Conn> waiting = new ArrayList<>();

        Broker(InetSocketAddress address, Path dir) throws IOException {
            this.address = address;
            this.log = new Log(dir);
            this.selector = Selector.open();
        }

        /** One connection: its role, what it has sent that is not handled yet, what it is owed. */
        final class Conn {
            final SocketChannel channel;
            final SelectionKey key;
            final ByteBuffer in = ByteBuffer.allocate((4 << 20) + 16);
            final ArrayDeque<ByteBuffer> out = new ArrayDeque<>();
            char role;
            // the part of the log still to send for the current fetch
            Log.Segment region;
            long regionPos, regionLeft;
            // a fetch waiting for data
            long fetchOffset, fetchDeadline;
            int fetchMax;

            Conn(SocketChannel channel) throws IOException {
                this.channel = channel;
                this.key = channel.register(selector, SelectionKey.OP_READ, this);
            }
        }

        void run() throws IOException {
            ServerSocketChannel server = ServerSocketChannel.open();
            server.bind(address);
            server.configureBlocking(false);
            server.register(selector, SelectionKey.OP_ACCEPT);
            System.out.println("slim-kafka broker listening on " + address);
            System.out.flush();
            for (;;) {
                long wait = nextDeadline() - System.nanoTime();
                if (waiting.isEmpty()) selector.select();
                else if (wait > 1_000_000L) selector.select(wait / 1_000_000L);
                else selector.selectNow();
                Iterator<SelectionKey> keys = selector.selectedKeys().iterator();
                while (keys.hasNext()) {
                    SelectionKey key = keys.next();
                    keys.remove();
                    if (!key.isValid()) continue;
                    try {
                        if (key.isAcceptable()) accept(server);
                        else handle((Conn) key.attachment(), key);
                    } catch (IOException e) {
                        close((Conn) key.attachment());
                    }
                }
                expireFetches();
            }
        }

        long nextDeadline() {
            long next = Long.MAX_VALUE;
            for (Conn c : waiting) next = Math.min(next, c.fetchDeadline);
            return next;
        }

        void accept(ServerSocketChannel server) throws IOException {
            SocketChannel channel = server.accept();
            if (channel == null) return;
            channel.configureBlocking(false);
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            new Conn(channel);
        }

        void close(Conn c) {
            if (c == null) return;
            waiting.remove(c);
            c.key.cancel();
            try {
                c.channel.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }

        /** Writes what c is owed, reads what it sent, and handles every whole request in it. */
        void handle(Conn c, SelectionKey key) throws IOException {
            if (key.isWritable()) flush(c);
            if (key.isValid() && key.isReadable() && c.channel.read(c.in) < 0) {
                close(c);
                return;
            }
            c.in.flip();
            if (c.role == 0 && c.in.hasRemaining()) {
                c.role = (char) c.in.get();
                if (c.role != 'P' && c.role != 'C') throw new IOException("unknown role");
                if (c.role == 'C') c.out.add(ByteBuffer.allocate(8).putLong(log.end).flip());
            }
            while (c.role == 'P' ? produce(c) : c.role == 'C' && fetch(c)) {
                // one request after the other
            }
            c.in.compact();
            if (key.isValid()) flush(c);
        }

        boolean produce(Conn c) throws IOException {
            if (c.in.remaining() < 4) return false;
            int n = c.in.getInt(c.in.position());
            if (n < 0 || n > c.in.capacity() - 4) throw new IOException("produce batch of " + n + " bytes");
            if (c.in.remaining() < 4 + n) return false;
            c.in.position(c.in.position() + 4);
            ByteBuffer batch = c.in.slice();
            batch.limit(n);
            long end = log.append(batch);
            c.in.position(c.in.position() + n);
            c.out.add(ByteBuffer.allocate(8).putLong(end).flip());
            for (Conn w : new ArrayList<>(waiting)) answer(w);
            return true;
        }

        boolean fetch(Conn c) throws IOException {
            if (waiting.contains(c) || c.regionLeft > 0 || c.in.remaining() < 12) return false;
            c.fetchOffset = c.in.getLong();
            c.fetchMax = c.in.getInt();
            c.fetchDeadline = System.nanoTime() + FETCH_WAIT_NANOS;
            log.release(c.fetchOffset);
            if (c.fetchOffset < log.end) answer(c);
            else waiting.add(c);
            return true;
        }

        /** Sends a waiting fetch what the log has from its offset. */
        void answer(Conn c) throws IOException {
            Log.Segment s = log.find(c.fetchOffset);
            if (s == null && c.fetchOffset < log.end) throw new IOException("offset " + c.fetchOffset + " released");
            long n = s == null ? 0 : Math.min(c.fetchMax, s.base + s.size - c.fetchOffset);
            waiting.remove(c);
            c.out.add(ByteBuffer.allocate(4).putInt((int) n).flip());
            c.region = s;
            c.regionPos = c.fetchOffset - (s == null ? 0 : s.base);
            c.regionLeft = n;
            flush(c);
        }

        void expireFetches() throws IOException {
            long now = System.nanoTime();
            for (Conn c : new ArrayList<>(waiting)) {
                if (now >= c.fetchDeadline) answer(c);
            }
        }

        /** Writes what c is owed: the queued buffers, then the log region. */
        void flush(Conn c) throws IOException {
            while (!c.out.isEmpty()) {
                ByteBuffer b = c.out.peek();
                c.channel.write(b);
                if (b.hasRemaining()) break;
                c.out.poll();
            }
            while (c.out.isEmpty() && c.regionLeft > 0) {
                long n = c.region.file.transferTo(c.regionPos, c.regionLeft, c.channel);
                if (n <= 0) break;
                c.regionPos += n;
                c.regionLeft -= n;
            }
            boolean owed = !c.out.isEmpty() || c.regionLeft > 0;
            if (c.key.isValid()) c.key.interestOps(SelectionKey.OP_READ | (owed ? SelectionKey.OP_WRITE : 0));
        }
    }

    // ---- client ----------------------------------------------------------

    static final class Client {
        record Settings(InetSocketAddress broker, double rate, double warmup, double duration, int recordBytes,
                double drain) {
        }

        static final int CLOSED_LOOP_BATCH = 100;
        static final int HEADER = 4 + 8 + 8 + 8;
        static final int MAX_BATCH_BYTES = 1 << 20;
        final Settings s;
        long start, measureFrom, measureUntil;
        // written by the producer, read after it ends
        volatile long sent, measuredSent;
        final Histogram lag = new Histogram();
        // written by the consumer, read after it ends
        volatile long received, measuredReceived, receivedInWindow;
        volatile boolean stop;
        final Histogram latency = new Histogram(), service = new Histogram();
        volatile Throwable failure;

        Client(Settings s) {
            if (s.recordBytes < HEADER || s.recordBytes > 65536) {
                throw new IllegalArgumentException("RECORD_BYTES from " + HEADER + " to 65536");
            }
            this.s = s;
        }

        long due(long n) {
            return start + (long) (n * 1e9 / s.rate);
        }

        boolean measured(long due) {
            return due >= measureFrom && due < measureUntil;
        }

        static SocketChannel connect(InetSocketAddress to, char role) throws IOException {
            SocketChannel ch = SocketChannel.open(to);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            writeAll(ch, ByteBuffer.allocate(1).put((byte) role).flip());
            return ch;
        }

        static void writeAll(SocketChannel ch, ByteBuffer b) throws IOException {
            while (b.hasRemaining()) ch.write(b);
        }

        static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                if (ch.read(b) < 0) throw new IOException("the broker closed the connection");
            }
        }

        int run(PrintStream out) throws Exception {
            SocketChannel consumer = connect(s.broker, 'C');
            SocketChannel producer = connect(s.broker, 'P');
            start = System.nanoTime() + 20_000_000L;
            measureFrom = start + (long) (s.warmup * 1e9);
            measureUntil = measureFrom + (long) (s.duration * 1e9);
            Thread p = thread("producer", () -> produce(producer));
            Thread c = thread("consumer", () -> consume(consumer));
            sleepUntil(measureFrom);
            out.println(MARK + "start");
            out.flush();
            p.join();
            long drainUntil = measureUntil + (long) (s.drain * 1e9);
            while (failure == null && received < sent && System.nanoTime() < drainUntil) Thread.sleep(1);
            stop = true;
            c.join(1000);
            out.println(MARK + "end");
            if (failure != null) {
                System.err.println("slim-kafka client: " + failure);
                return 1;
            }
            report(out);
            return 0;
        }

        Thread thread(String name, Task task) {
            Thread t = new Thread(() -> {
                try {
                    task.run();
                } catch (Throwable e) {
                    failure = e;
                }
            }, name);
            t.setDaemon(true);
            t.start();
            return t;
        }

        interface Task {
            void run() throws Exception;
        }

        static void sleepUntil(long at) {
            for (long now; (now = System.nanoTime()) < at;) LockSupport.parkNanos(at - now);
        }

        void produce(SocketChannel ch) throws IOException {
            ByteBuffer batch = ByteBuffer.allocate(4 + MAX_BATCH_BYTES);
            ByteBuffer ack = ByteBuffer.allocate(8);
            int perBatch = MAX_BATCH_BYTES / s.recordBytes;
            long total = s.rate > 0 ? (long) Math.ceil((measureUntil - start) * s.rate / 1e9) : Long.MAX_VALUE;
            while (total > 0 && s.rate > 0 && due(total - 1) >= measureUntil) total--;
            long next = 0;
            sleepUntil(start);
            while (failure == null) {
                long now = System.nanoTime();
                if (s.rate == 0 && now >= measureUntil || next >= total) break;
                int count;
                if (s.rate > 0) {
                    long dueBy = next;
                    while (dueBy < total && dueBy - next < perBatch && due(dueBy) <= now) dueBy++;
                    if (dueBy == next) {
                        LockSupport.parkNanos(due(next) - now);
                        continue;
                    }
                    count = (int) (dueBy - next);
                } else {
                    count = CLOSED_LOOP_BATCH;
                }
                batch.clear();
                batch.putInt(count * s.recordBytes);
                for (int i = 0; i < count; i++, next++) {
                    long due = s.rate > 0 ? due(next) : now;
                    batch.putInt(s.recordBytes - 4).putLong(due).putLong(now).putLong(next);
                    batch.position(batch.position() + s.recordBytes - HEADER);
                    if (measured(due)) {
                        measuredSent++;
                        lag.add(now - due);
                    }
                }
                batch.flip();
                writeAll(ch, batch);
                sent = next;
                ack.clear();
                readFully(ch, ack);
            }
        }

        void consume(SocketChannel ch) throws IOException {
            ByteBuffer fetch = ByteBuffer.allocate(12);
            ByteBuffer header = ByteBuffer.allocate(4);
            ByteBuffer data = ByteBuffer.allocate(2 * MAX_BATCH_BYTES + 65536);
            ByteBuffer start = ByteBuffer.allocate(8);
            readFully(ch, start);
            long offset = start.getLong(0);
            while (!stop) {
                fetch.clear();
                fetch.putLong(offset).putInt(MAX_BATCH_BYTES).flip();
                writeAll(ch, fetch);
                header.clear();
                readFully(ch, header);
                int n = header.getInt(0);
                if (n < 0 || n > data.remaining()) throw new IOException("fetch answered " + n + " bytes");
                ByteBuffer part = data.slice();
                part.limit(n);
                readFully(ch, part);
                data.position(data.position() + n);
                offset += n;
                data.flip();
                long now = System.nanoTime();
                boolean inWindow = now >= measureFrom && now < measureUntil;
                while (data.remaining() >= 4 && data.remaining() >= 4 + data.getInt(data.position())) {
                    int len = data.getInt();
                    long due = data.getLong(), sentAt = data.getLong();
                    data.position(data.position() + len - 16);
                    received++;
                    if (inWindow) receivedInWindow++;
                    if (measured(due)) {
                        measuredReceived++;
                        latency.add(now - due);
                        service.add(now - sentAt);
                    }
                }
                data.compact();
            }
        }

        void report(PrintStream out) {
            double us = 1000.0;
            long unanswered = measuredSent - measuredReceived;
            out.println(String.format(Locale.ROOT,
                    "{\"proto\":\"kafka\",\"conns\":2,\"rate\":%.3f,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
                            + "\"scheduled\":%d,\"completed\":%d,\"unanswered\":%d,\"record_bytes\":%d,"
                            + "\"achieved\":%.3f,\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
                            + "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"send_lag_us\":{\"p50\":%.3f,\"p99\":%.3f},"
                            + "\"service_us\":{\"p50\":%.3f,\"p99\":%.3f}}",
                    s.rate, s.warmup, s.duration, s.rate > 0 ? measuredSent : 0, measuredReceived, unanswered,
                    s.recordBytes, receivedInWindow / s.duration, latency.percentile(50) / us,
                    latency.percentile(90) / us, latency.percentile(99) / us, latency.percentile(99.9) / us,
                    latency.max / us, latency.count == 0 ? 0 : latency.sum / latency.count / us,
                    lag.percentile(50) / us, lag.percentile(99) / us, service.percentile(50) / us,
                    service.percentile(99) / us));
            out.flush();
        }
    }
}
