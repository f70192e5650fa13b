DROP TABLE webhook_endpoints;
DROP TABLE notification_preferences;
DROP TABLE notifications;
DROP TABLE notification_deliveries;
DROP TABLE notification_events;
