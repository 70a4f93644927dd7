/* test_sesrep.c - the AWS reputation watch's pure parts: endpoints, the
 * GetMetricData request, the GetAccount answer, error names. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "sesrep.h"
#include "unit.h"

static void clear_endpoint_env(void) {
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_CLOUDWATCH");
  unsetenv("AWS_ENDPOINT_URL_SESV2");
  unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
}

static int t_endpoint_order(void) {
  char out[256], err[256];
  clear_endpoint_env();
  ASSERT_INT_EQ(
      sesrep_endpoint("CLOUDWATCH", "monitoring", "eu-west-1", out, sizeof out, err, sizeof err),
      0);
  ASSERT_STR_EQ(out, "https://monitoring.eu-west-1.amazonaws.com");
  ASSERT_INT_EQ(sesrep_endpoint("SESV2", "email", "cn-north-1", out, sizeof out, err, sizeof err),
                0);
  ASSERT_STR_EQ(out, "https://email.cn-north-1.amazonaws.com.cn");
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
  ASSERT_INT_EQ(sesrep_endpoint("SESV2", "email", "us-east-1", out, sizeof out, err, sizeof err),
                0);
  ASSERT_STR_EQ(out, "http://127.0.0.1:4566");
  setenv("AWS_ENDPOINT_URL_SESV2", "https://ses.internal:8443/base//", 1);
  ASSERT_INT_EQ(sesrep_endpoint("SESV2", "email", "us-east-1", out, sizeof out, err, sizeof err),
                0);
  ASSERT_STR_EQ(out, "https://ses.internal:8443/base");
  setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
  ASSERT_INT_EQ(sesrep_endpoint("SESV2", "email", "us-east-1", out, sizeof out, err, sizeof err),
                0);
  ASSERT_STR_EQ(out, "https://email.us-east-1.amazonaws.com");
  clear_endpoint_env();
  return 0;
}

static int t_endpoint_errors(void) {
  char out[256], err[256];
  clear_endpoint_env();
  ASSERT_INT_EQ(sesrep_endpoint("SESV2", "email", NULL, out, sizeof out, err, sizeof err) < 0, 1);
  ASSERT_TRUE(strstr(err, "no region") != NULL);
  ASSERT_INT_EQ(sesrep_endpoint("SESV2", "email", "US_EAST", out, sizeof out, err, sizeof err) < 0,
                1);
  setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "ftp://x", 1);
  ASSERT_INT_EQ(sesrep_endpoint("CLOUDWATCH", "monitoring", "us-east-1", out, sizeof out, err,
                                sizeof err) < 0,
                1);
  ASSERT_TRUE(strstr(err, "AWS_ENDPOINT_URL_CLOUDWATCH must be") != NULL);
  setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "https://user:pw@host/", 1);
  ASSERT_INT_EQ(sesrep_endpoint("CLOUDWATCH", "monitoring", "us-east-1", out, sizeof out, err,
                                sizeof err) < 0,
                1);
  ASSERT_TRUE(strstr(err, "pw") == NULL); /* the URL itself is not repeated */
  clear_endpoint_env();
  return 0;
}

static int t_metric_request(void) {
  char *sets[] = {"marketing", "tx"};
  char *body = sesrep_metric_request(1700000000, 1700000600, sets, 2);
  ASSERT_TRUE(body != NULL);
  cJSON *root = cJSON_Parse(body);
  free(body);
  ASSERT_TRUE(root != NULL);
  ASSERT_INT_EQ(cJSON_GetObjectItem(root, "StartTime")->valuedouble, 1700000000);
  ASSERT_INT_EQ(cJSON_GetObjectItem(root, "EndTime")->valuedouble, 1700000600);
  cJSON *qs = cJSON_GetObjectItem(root, "MetricDataQueries");
  ASSERT_INT_EQ(cJSON_GetArraySize(qs), 6);
  cJSON *c2 = cJSON_GetArrayItem(qs, 5);
  ASSERT_STR_EQ(cJSON_GetObjectItem(c2, "Id")->valuestring, "c2");
  cJSON *metric = cJSON_GetObjectItem(cJSON_GetObjectItem(c2, "MetricStat"), "Metric");
  ASSERT_STR_EQ(cJSON_GetObjectItem(metric, "Namespace")->valuestring, "AWS/SES");
  ASSERT_STR_EQ(cJSON_GetObjectItem(metric, "MetricName")->valuestring, "Reputation.ComplaintRate");
  cJSON *dim = cJSON_GetArrayItem(cJSON_GetObjectItem(metric, "Dimensions"), 0);
  ASSERT_STR_EQ(cJSON_GetObjectItem(dim, "Name")->valuestring, "ses:configuration-set");
  ASSERT_STR_EQ(cJSON_GetObjectItem(dim, "Value")->valuestring, "tx");
  cJSON *b0 = cJSON_GetArrayItem(qs, 0);
  metric = cJSON_GetObjectItem(cJSON_GetObjectItem(b0, "MetricStat"), "Metric");
  ASSERT_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(metric, "Dimensions")), 0);
  cJSON_Delete(root);
  return 0;
}

static int t_parse_account(void) {
  struct sesrep_account a;
  const char *doc =
      "{\"DedicatedIpAutoWarmupEnabled\":false,\"EnforcementStatus\":\"PROBATION\","
      "\"ProductionAccessEnabled\":true,\"SendQuota\":{\"Max24HourSend\":50000.0,"
      "\"MaxSendRate\":14.0,\"SentLast24Hours\":12.0},\"SendingEnabled\":false}";
  ASSERT_INT_EQ(sesrep_parse_account(doc, &a), 0);
  ASSERT_STR_EQ(a.status, "PROBATION");
  ASSERT_INT_EQ(a.sending_enabled, 0);
  ASSERT_INT_EQ(a.production, 1);
  ASSERT_INT_EQ(a.max_24h, 50000);
  ASSERT_INT_EQ(a.max_rate, 14);
  ASSERT_INT_EQ(a.sent_24h, 12);
  ASSERT_INT_EQ(sesrep_parse_account("{\"EnforcementStatus\":\"<b>x</b>\"}", &a), 0);
  ASSERT_STR_EQ(a.status, "_b_x__b_");
  ASSERT_INT_EQ(a.sending_enabled, -1);
  ASSERT_INT_EQ(a.max_24h, -1);
  ASSERT_INT_EQ(sesrep_parse_account("{\"SendingEnabled\":true}", &a) < 0, 1);
  ASSERT_INT_EQ(sesrep_parse_account("not json", &a) < 0, 1);
  ASSERT_INT_EQ(sesrep_parse_account(NULL, &a) < 0, 1);
  return 0;
}

static int t_classify(void) {
  char d[512];
  ASSERT_STR_EQ(sesrep_classify(400, "{\"__type\":\"Throttling\",\"message\":\"Rate exceeded\"}", d,
                                sizeof d),
                "throttled");
  ASSERT_STR_EQ(d, "HTTP 400 Throttling: Rate exceeded");
  ASSERT_STR_EQ(sesrep_classify(429, "{\"message\":\"Too Many Requests\"}", d, sizeof d),
                "throttled");
  ASSERT_STR_EQ(sesrep_classify(403,
                                "{\"__type\":\"com.amazon.coral.service#AccessDeniedException\","
                                "\"Message\":\"not authorized\"}",
                                d, sizeof d),
                "access_denied");
  ASSERT_STR_EQ(d, "HTTP 403 AccessDeniedException: not authorized");
  ASSERT_STR_EQ(sesrep_classify(403, "{\"__type\":\"UnrecognizedClientException\"}", d, sizeof d),
                "credentials_rejected");
  ASSERT_STR_EQ(sesrep_classify(400, "{\"__type\":\"ExpiredTokenException\"}", d, sizeof d),
                "credentials_rejected");
  ASSERT_STR_EQ(sesrep_classify(503, "<html>\r\nbusy</html>", d, sizeof d), "server_error");
  ASSERT_STR_EQ(d, "HTTP 503");
  ASSERT_STR_EQ(sesrep_classify(400, "{\"__type\":\"InvalidParameterValue\",\"message\":\"a\\nb\"}",
                                d, sizeof d),
                "client_error");
  ASSERT_STR_EQ(d, "HTTP 400 InvalidParameterValue: a b");
  return 0;
}

const struct unit_test sesrep_tests[] = {
    {"endpoint_order", t_endpoint_order},
    {"endpoint_errors", t_endpoint_errors},
    {"metric_request", t_metric_request},
    {"parse_account", t_parse_account},
    {"classify", t_classify},
    {0},
};
