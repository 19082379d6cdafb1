import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

/**
 * Readiness probe for the local Kafka cluster: exits 0 once the admin user can authenticate
 * with SCRAM-SHA-512 and the cluster reports the expected number of live brokers.
 * Usage: KafkaProbe BOOTSTRAP USER PASSWORD EXPECTED_BROKERS [CA_PEM_FILE]
 * With CA_PEM_FILE: SASL_SSL, the brokers' certificates checked against that CA and their names.
 */
public final class KafkaProbe {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        if (args.length > 4) {
            props.put("security.protocol", "SASL_SSL");
            props.put("ssl.truststore.type", "PEM");
            props.put("ssl.truststore.location", args[4]);
        } else {
            props.put("security.protocol", "SASL_PLAINTEXT");
        }
        props.put("sasl.mechanism", "SCRAM-SHA-512");
        props.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                + "username=\"" + args[1] + "\" password=\"" + args[2] + "\";");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "4000");
        int expected = Integer.parseInt(args[3]);
        try (Admin admin = Admin.create(props)) {
            int live = admin.describeCluster(new DescribeClusterOptions().timeoutMs(4000))
                    .nodes().get(5, TimeUnit.SECONDS).size();
            System.out.println(live + " of " + expected + " brokers live");
            System.exit(live >= expected ? 0 : 1);
        } catch (Exception e) {
            System.out.println("not ready: " + e.getMessage());
            System.exit(1);
        }
    }
}
