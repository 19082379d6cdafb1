import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.Row;
import com.datastax.driver.core.Session;

/**
 * Readiness probe for the local Cassandra node: exits 0 once a password login succeeds and
 * a query answers (the default superuser is created some seconds after CQL starts listening).
 * Uses the Java driver that cassandra-all itself ships. Usage: CqlProbe HOST PORT USER PASSWORD [QUERY]
 * With QUERY (`stack.sh cql`), runs it instead and prints the first column of each row.
 */
public final class CqlProbe {
    public static void main(String[] args) {
        try (Cluster cluster = Cluster.builder()
                .addContactPoint(args[0])
                .withPort(Integer.parseInt(args[1]))
                .withCredentials(args[2], args[3])
                .withoutJMXReporting()
                .withoutMetrics()
                .build();
             Session session = cluster.connect()) {
            if (args.length > 4) {
                for (Row r : session.execute(args[4])) {
                    System.out.println(r.getObject(0));
                }
                System.exit(0);
            }
            Row row = session.execute("SELECT release_version FROM system.local").one();
            System.out.println("Cassandra " + row.getString(0) + " answers");
            System.exit(0);
        } catch (Exception e) {
            System.out.println("not ready: " + e.getMessage());
            System.exit(1);
        }
    }
}
