import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;

/**
 * What the topics under a prefix take on the brokers' disks, as Apache Kafka's own Admin
 * client reads it (DescribeLogDirs at every broker): a check independent of the operator's
 * client. Prints "BYTES PARTITIONS TOPICS": bytes of every replica on every broker, and the
 * distinct partitions and topics. Usage: LogDirsProbe BOOTSTRAP USER PASSWORD CA_PEM_FILE PREFIX
 */
public final class LogDirsProbe {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put("security.protocol", "SASL_SSL");
        props.put("ssl.truststore.type", "PEM");
        props.put("ssl.truststore.location", args[3]);
        props.put("sasl.mechanism", "SCRAM-SHA-512");
        props.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                + "username=\"" + args[1] + "\" password=\"" + args[2] + "\";");
        String prefix = args[4];
        try (Admin admin = Admin.create(props)) {
            List<Integer> brokers = new ArrayList<>();
            for (Node n : admin.describeCluster().nodes().get(10, TimeUnit.SECONDS)) {
                brokers.add(n.id());
            }
            long bytes = 0;
            Set<TopicPartition> partitions = new HashSet<>();
            Set<String> topics = new HashSet<>();
            Map<Integer, Map<String, LogDirDescription>> all =
                    admin.describeLogDirs(brokers).allDescriptions().get(10, TimeUnit.SECONDS);
            for (Map<String, LogDirDescription> dirs : all.values()) {
                for (LogDirDescription dir : dirs.values()) {
                    for (Map.Entry<TopicPartition, ReplicaInfo> r : dir.replicaInfos().entrySet()) {
                        if (r.getKey().topic().startsWith(prefix)) {
                            bytes += r.getValue().size();
                            partitions.add(r.getKey());
                            topics.add(r.getKey().topic());
                        }
                    }
                }
            }
            System.out.println(bytes + " " + partitions.size() + " " + topics.size());
        }
    }
}
