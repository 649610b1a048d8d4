// A thread pool of four workers adding to their own counter and a shared
// total under one lock (tests/engine/programs.bats). READY once they count;
// after the trigger (CEDANA_WL_TRIGGER) PASS when the counters went on from
// above their value at READY and add up to the total.
import java.io.File;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

public class Counters {
    static final Object lock = new Object();
    static final long[] per = new long[4];
    static long total;

    public static void main(String[] args) throws Exception {
        File trigger = new File(System.getenv("CEDANA_WL_TRIGGER"));
        ExecutorService pool = Executors.newFixedThreadPool(per.length);
        for (int i = 0; i < per.length; i++) {
            final int k = i;
            pool.submit(() -> {
                while (true) {
                    synchronized (lock) {
                        per[k]++;
                        total++;
                    }
                    Thread.sleep(1);
                }
            });
        }
        Thread.sleep(300);
        long[] atReady;
        synchronized (lock) {
            atReady = per.clone();
        }
        System.out.println("READY");
        System.out.flush();
        while (!trigger.exists())
            Thread.sleep(10);
        Thread.sleep(200);
        synchronized (lock) {
            long sum = 0;
            boolean on = true;
            for (int i = 0; i < per.length; i++) {
                sum += per[i];
                on &= per[i] > atReady[i];
            }
            System.out.println(sum == total && on ? "PASS" : "FAIL: " + sum + " " + total);
        }
        System.out.flush();
        System.exit(0);
    }
}
