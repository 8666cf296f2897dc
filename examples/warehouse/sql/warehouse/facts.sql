-- Built from {{ stage_users.target_table }} ({{ stage_users.rows_affected }} rows)
-- and {{ stage_orders.target_table }} ({{ stage_orders.rows_affected }} rows).
DROP TABLE IF EXISTS {{ target_table }};
CREATE TABLE {{ target_table }} AS
SELECT u.user_id, u.country, COUNT(o.order_id) AS orders, COALESCE(SUM(o.amount), 0) AS revenue
FROM {{ stage_users.target_table }} u
LEFT JOIN {{ stage_orders.target_table }} o ON o.user_id = u.user_id
GROUP BY u.user_id, u.country
