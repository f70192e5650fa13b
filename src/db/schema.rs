//! Diesel table definitions for both backends (only types common to SQLite and PostgreSQL).

diesel::table! {
    audit_events (event_no) {
        seq -> Nullable<BigInt>,
        id -> Text,
        occurred_at -> Timestamp,
        actor_id -> Nullable<Text>,
        actor_username -> Nullable<Text>,
        organization_id -> Nullable<Text>,
        hat -> Nullable<Text>,
        acting -> Bool,
        action -> Text,
        entity_type -> Text,
        entity_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        outcome -> Text,
        reason -> Nullable<Text>,
        before_state -> Nullable<Text>,
        after_state -> Nullable<Text>,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
        event_no -> BigInt,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    organizations (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        kind -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        email -> Text,
        organization_id -> Text,
        status -> Text,
        password_hash -> Text,
        failed_logins -> Integer,
        failed_window_start -> Nullable<Timestamp>,
        locked_until -> Nullable<Timestamp>,
        lock_count -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    hats (id) {
        id -> Text,
        user_id -> Text,
        hat -> Text,
        scope_organization_id -> Nullable<Text>,
        scope_adm1 -> Nullable<Text>,
        valid_from -> Nullable<Timestamp>,
        valid_until -> Nullable<Timestamp>,
        acting -> Bool,
        granted_by -> Nullable<Text>,
        granted_at -> Timestamp,
        revoked_by -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        family_id -> Text,
        user_id -> Text,
        token_hash -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(hats -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::table! {
    areas (pcode) {
        pcode -> Text,
        level -> Integer,
        name -> Text,
        parent_pcode -> Nullable<Text>,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
    }
}

diesel::table! {
    sectors (code) {
        code -> Text,
        name -> Text,
        vocabulary -> Text,
        humanitarian -> Bool,
    }
}

diesel::table! {
    pools (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        currency -> Text,
        funding_start -> Date,
        funding_end -> Date,
        settings_version -> Integer,
        version -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    pool_settings (pool_id, version) {
        pool_id -> Text,
        version -> Integer,
        settings -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    proposals (id) {
        id -> Text,
        pool_id -> Text,
        organization_id -> Text,
        reference -> Nullable<Text>,
        state -> Text,
        current_version -> Integer,
        version -> BigInt,
        title -> Text,
        search_text -> Text,
        sector_code -> Nullable<Text>,
        adm1_pcode -> Nullable<Text>,
        adm2_pcode -> Nullable<Text>,
        requested_minor -> Nullable<BigInt>,
        pool_settings_version -> Nullable<Integer>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        first_submitted_at -> Nullable<Timestamp>,
        submitted_at -> Nullable<Timestamp>,
        submitted_by -> Nullable<Text>,
    }
}

diesel::table! {
    proposal_versions (proposal_id, number) {
        proposal_id -> Text,
        number -> Integer,
        status -> Text,
        content -> Text,
        budget_total_minor -> Nullable<BigInt>,
        requested_minor -> Nullable<BigInt>,
        duration_days -> Nullable<Integer>,
        waiver_reasons -> Nullable<Text>,
        pool_settings_version -> Nullable<Integer>,
        created_by -> Text,
        created_at -> Timestamp,
        submitted_by -> Nullable<Text>,
        submitted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reference_counters (pool_id, year) {
        pool_id -> Text,
        year -> Integer,
        last -> Integer,
    }
}

diesel::table! {
    ledger_accounts (id) {
        id -> Text,
        pool_id -> Text,
        kind -> Text,
        owner_id -> Text,
        currency -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_balances (account_id) {
        account_id -> Text,
        pool_id -> Text,
        kind -> Text,
        balance_minor -> BigInt,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Text,
        pool_id -> Text,
        kind -> Text,
        proposal_id -> Nullable<Text>,
        amount_minor -> BigInt,
        reference -> Nullable<Text>,
        memo -> Nullable<Text>,
        contributor_id -> Nullable<Text>,
        original_currency -> Nullable<Text>,
        original_minor -> Nullable<BigInt>,
        fx_rate -> Nullable<Text>,
        reversal_of -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        created_by -> Text,
        hat -> Nullable<Text>,
        request_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_entries (transaction_id, leg) {
        transaction_id -> Text,
        leg -> Integer,
        account_id -> Text,
        amount_minor -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (user_id, idem_key) {
        user_id -> Text,
        idem_key -> Text,
        request_hash -> Text,
        status -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        transaction_id -> Nullable<Text>,
        locked_until -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    activities (id) {
        id -> Text,
        organization_id -> Text,
        title -> Text,
        sector_code -> Text,
        adm1_pcode -> Text,
        adm2_pcode -> Text,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
        start_date -> Date,
        end_date -> Nullable<Date>,
        status -> Text,
        version -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        import_key -> Nullable<Text>,
    }
}

diesel::table! {
    consultation_rules (id) {
        id -> Text,
        organization_id -> Text,
        sector_code -> Nullable<Text>,
        adm1_pcode -> Nullable<Text>,
        always_consult -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consultation_rounds (id) {
        id -> Text,
        proposal_id -> Text,
        version_number -> Integer,
        round_number -> Integer,
        opened_at -> Timestamp,
        deadline -> Timestamp,
        silence_is_consent -> Bool,
        closed_at -> Nullable<Timestamp>,
        closed_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    consultees (round_id, organization_id) {
        round_id -> Text,
        organization_id -> Text,
        reasons -> Text,
        status -> Text,
        responded_by -> Nullable<Text>,
        responded_at -> Nullable<Timestamp>,
        comment -> Nullable<Text>,
    }
}

diesel::table! {
    consultation_responses (id) {
        id -> Text,
        round_id -> Text,
        organization_id -> Text,
        responded_by -> Text,
        kind -> Text,
        comment -> Nullable<Text>,
        unsolicited -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    flags (id) {
        id -> Text,
        proposal_id -> Text,
        round_id -> Text,
        version_number -> Integer,
        organization_id -> Nullable<Text>,
        raised_by -> Nullable<Text>,
        system_raised -> Bool,
        category -> Text,
        severity -> Text,
        description -> Text,
        confidential_note -> Nullable<Text>,
        activity_id -> Nullable<Text>,
        status -> Text,
        ended_by -> Nullable<Text>,
        ended_at -> Nullable<Timestamp>,
        end_justification -> Nullable<Text>,
        created_at -> Timestamp,
        matched_activities -> Nullable<Text>,
        matched_activities_total -> Nullable<Integer>,
    }
}

diesel::table! {
    approval_steps (id) {
        id -> Text,
        proposal_id -> Text,
        version_number -> Integer,
        position -> Integer,
        hat -> Text,
        reason -> Text,
        financial -> Bool,
        sla_days -> Integer,
        status -> Text,
        opened_at -> Nullable<Timestamp>,
        due_at -> Nullable<Timestamp>,
        overdue -> Bool,
        decided_by -> Nullable<Text>,
        decided_hat -> Nullable<Text>,
        acting -> Bool,
        decided_at -> Nullable<Timestamp>,
        decision -> Nullable<Text>,
        comment -> Nullable<Text>,
        conditions -> Nullable<Text>,
        multi_hat_acknowledgement -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tranches (id) {
        id -> Text,
        proposal_id -> Text,
        number -> Integer,
        percent -> Integer,
        amount_minor -> BigInt,
        condition -> Text,
        status -> Text,
        paid_minor -> BigInt,
        waive_reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reports (id) {
        id -> Text,
        proposal_id -> Text,
        kind -> Text,
        content -> Text,
        expenditure_minor -> Nullable<BigInt>,
        status -> Text,
        submitted_by -> Text,
        submitted_at -> Timestamp,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_reason -> Nullable<Text>,
    }
}

diesel::table! {
    tranche_payments (transaction_id) {
        transaction_id -> Text,
        proposal_id -> Text,
        tranche_number -> Integer,
        amount_minor -> BigInt,
        paid_on -> Date,
        payment_reference -> Text,
        paid_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    closeouts (proposal_id) {
        proposal_id -> Text,
        objectives_met -> Text,
        confidence_effect -> Text,
        lessons -> Text,
        closed_by -> Text,
        closed_at -> Timestamp,
    }
}

diesel::joinable!(proposals -> pools (pool_id));
diesel::joinable!(proposal_versions -> proposals (proposal_id));
diesel::joinable!(ledger_entries -> ledger_accounts (account_id));
diesel::joinable!(ledger_entries -> ledger_transactions (transaction_id));
diesel::joinable!(ledger_balances -> ledger_accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    audit_head,
    organizations,
    users,
    hats,
    refresh_tokens,
    areas,
    sectors,
    pools,
    pool_settings,
    proposals,
    proposal_versions,
    reference_counters,
    ledger_accounts,
    ledger_balances,
    ledger_transactions,
    ledger_entries,
    idempotency_keys,
    activities,
    consultation_rules,
    consultation_rounds,
    consultees,
    consultation_responses,
    flags,
    approval_steps,
    tranches,
    reports,
    tranche_payments,
    closeouts,
);

diesel::table! {
    login_throttles (account, client_addr) {
        account -> Text,
        client_addr -> Text,
        failures -> Integer,
        window_start -> Nullable<Timestamp>,
        blocked_until -> Nullable<Timestamp>,
        blocks -> Integer,
        last_success_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

// ---- dual control (2026-11-30-0000B1_dual_control)

diesel::table! {
    hat_grant_requests (id) {
        id -> Text,
        user_id -> Text,
        hat -> Text,
        scope_organization_id -> Nullable<Text>,
        scope_adm1 -> Nullable<Text>,
        valid_from -> Nullable<Timestamp>,
        valid_until -> Nullable<Timestamp>,
        acting -> Bool,
        requested_by -> Text,
        requested_at -> Timestamp,
        expires_at -> Timestamp,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_via -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_reason -> Nullable<Text>,
        hat_id -> Nullable<Text>,
    }
}

diesel::table! {
    password_setup_tokens (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        purpose -> Text,
        issued_by -> Nullable<Text>,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    session_cutoffs (user_id) {
        user_id -> Text,
        sessions_valid_after -> Timestamp,
    }
}

diesel::joinable!(session_cutoffs -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, session_cutoffs);

// Notifications (issue 17).
diesel::table! {
    notification_events (id) {
        id -> Text,
        kind -> Text,
        audit_event_id -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        entity_type -> Text,
        entity_id -> Nullable<Text>,
        proposal_id -> Nullable<Text>,
        summary -> Text,
        link -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notification_deliveries (id) {
        id -> Text,
        event_id -> Text,
        channel -> Text,
        user_id -> Nullable<Text>,
        webhook_id -> Nullable<Text>,
        reason -> Text,
        digest -> Bool,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        last_status_code -> Nullable<Integer>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        user_id -> Text,
        event_id -> Text,
        kind -> Text,
        summary -> Text,
        reason -> Text,
        link -> Text,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notification_preferences (user_id) {
        user_id -> Text,
        email_mode -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        organization_id -> Text,
        url -> Text,
        description -> Text,
        secret -> Text,
        active -> Bool,
        version -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(notification_deliveries -> notification_events (event_id));
diesel::allow_tables_to_appear_in_same_query!(
    notification_events,
    notification_deliveries,
    notifications,
    notification_preferences,
    webhook_endpoints,
);
diesel::table! {
    ledger_daily_totals (pool_id, day, account_kind, transaction_kind) {
        pool_id -> Text,
        day -> Date,
        account_kind -> Text,
        transaction_kind -> Text,
        total_minor -> BigInt,
        entries -> BigInt,
    }
}

diesel::table! {
    console_sessions (id) {
        id -> Text,
        secret_hash -> Text,
        user_id -> Text,
        family_id -> Text,
        sealed_tokens -> Text,
        access_expires_at -> Timestamp,
        csrf_token -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    ledger_monthly_totals (pool_id, month, account_kind, transaction_kind) {
        pool_id -> Text,
        month -> Date,
        account_kind -> Text,
        transaction_kind -> Text,
        total_minor -> BigInt,
        entries -> BigInt,
    }
}

// Authorization reads a user, its session cut-off and its hats in one statement (issue 14).
diesel::allow_tables_to_appear_in_same_query!(hats, session_cutoffs);
