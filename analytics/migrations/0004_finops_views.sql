-- 0004: FinOps views over the daily rollup (UTC days). Plain views: nothing is stored, so
-- `CREATE OR REPLACE` keeps them current when a later migration redefines one.
-- Columns are documented in docs/finops.md. Costs are Decimal(38, 9) USD, as in the ledger.

-- Cost and usage per UTC day × business_line × project × task_type × model × provider × key_id.
CREATE OR REPLACE VIEW {db}.finops_cost_daily AS
SELECT
    day,
    business_line,
    project,
    task_type,
    model,
    provider,
    key_id,
    sum(cost_usd) AS cost_usd,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(errors) AS errors,
    sum(blocked) AS blocked,
    sum(downgraded) AS downgraded
FROM {db}.calls_daily
GROUP BY day, business_line, project, task_type, model, provider, key_id;

-- The same per calendar month (`month` = first day of the month, UTC).
CREATE OR REPLACE VIEW {db}.finops_cost_monthly AS
SELECT
    toStartOfMonth(day) AS month,
    business_line,
    project,
    task_type,
    model,
    provider,
    key_id,
    sum(cost_usd) AS cost_usd,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(errors) AS errors,
    sum(blocked) AS blocked,
    sum(downgraded) AS downgraded
FROM {db}.calls_daily
GROUP BY month, business_line, project, task_type, model, provider, key_id;

-- Month to date per business_line × project, with a linear forecast for the whole month:
-- forecast_usd = mtd_cost_usd / days_elapsed × days_in_month (days_elapsed counts the current
-- day as the fraction of it that has passed, so the forecast is usable from the first hour).
CREATE OR REPLACE VIEW {db}.finops_month_to_date AS
SELECT
    toStartOfMonth(today()) AS month,
    business_line,
    project,
    sum(cost_usd) AS mtd_cost_usd,
    sum(calls) AS mtd_calls,
    greatest(dateDiff('second', toDateTime(toStartOfMonth(today()), 'UTC'), now()), 3600) / 86400
        AS days_elapsed,
    toDayOfMonth(toLastDayOfMonth(today())) AS days_in_month,
    round(toFloat64(sum(cost_usd)) / days_elapsed * days_in_month, 6) AS forecast_usd
FROM {db}.calls_daily
WHERE day >= toStartOfMonth(today())
GROUP BY business_line, project;

-- Unit economics per month × business_line × project × task_type × model (all calls counted;
-- NULL where the denominator is zero). The ratios name the aggregates by their aliases: an alias
-- shadows the column, so `sum(cost_usd)` below would be a (refused) sum of a sum.
CREATE OR REPLACE VIEW {db}.finops_unit_economics AS
SELECT
    toStartOfMonth(day) AS month,
    business_line,
    project,
    task_type,
    model,
    sum(cost_usd) AS cost_usd,
    sum(calls) AS calls,
    sum(input_tokens) + sum(output_tokens) AS tokens,
    cost_usd / nullIf(calls, 0) AS usd_per_call,
    cost_usd * 1000 / nullIf(calls, 0) AS usd_per_1k_calls,
    cost_usd * 1000000 / nullIf(tokens, 0) AS usd_per_1m_tokens,
    sum(output_tokens) / nullIf(calls, 0) AS output_tokens_per_call
FROM {db}.calls_daily
GROUP BY month, business_line, project, task_type, model;

-- FinOps FOCUS 1.0 shaped cost rows (one per UTC day × attribution × model), for tools that
-- ingest FOCUS exports. tollway records list prices, so Billed/Effective/List/Contracted cost
-- are the same figure; custom columns carry the `x_` prefix as FOCUS asks.
CREATE OR REPLACE VIEW {db}.focus_costs AS
SELECT
    sum(cost_usd) AS BilledCost,
    sum(cost_usd) AS EffectiveCost,
    sum(cost_usd) AS ListCost,
    sum(cost_usd) AS ContractedCost,
    'USD' AS BillingCurrency,
    toDateTime(day, 'UTC') AS ChargePeriodStart,
    toDateTime(day + 1, 'UTC') AS ChargePeriodEnd,
    toDateTime(toStartOfMonth(day), 'UTC') AS BillingPeriodStart,
    toDateTime(toStartOfMonth(day) + INTERVAL 1 MONTH, 'UTC') AS BillingPeriodEnd,
    'Usage' AS ChargeCategory,
    'Usage-Based' AS ChargeFrequency,
    concat(model, ' tokens via ', provider) AS ChargeDescription,
    provider AS ProviderName,
    provider AS PublisherName,
    provider AS InvoiceIssuerName,
    'AI and Machine Learning' AS ServiceCategory,
    concat(provider, ' LLM API') AS ServiceName,
    model AS ResourceId,
    model AS ResourceName,
    'LLM model' AS ResourceType,
    concat(provider, ':', model) AS SkuId,
    business_line AS SubAccountId,
    business_line AS SubAccountName,
    sum(input_tokens) + sum(output_tokens) AS ConsumedQuantity,
    'Tokens' AS ConsumedUnit,
    (sum(input_tokens) + sum(output_tokens)) / 1000000 AS PricingQuantity,
    '1M Tokens' AS PricingUnit,
    map(
        'business_line', business_line,
        'project', project,
        'task_type', task_type,
        'environment', environment,
        'key_id', key_id
    ) AS Tags,
    business_line AS x_BusinessLine,
    project AS x_Project,
    task_type AS x_TaskType,
    sum(calls) AS x_Calls
FROM {db}.calls_daily
GROUP BY day, business_line, project, task_type, environment, model, provider, key_id;
