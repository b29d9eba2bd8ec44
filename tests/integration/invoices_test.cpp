// Invoices against a real Postgres: calendar months in the tenant's time zone, prices in force
// per request, rounding once per line, immutability after finalization, gapless numbers, and
// late usage billed once as an adjustment.
#include "billing_fixture.h"

#include "infergate/billing/invoices.h"
#include "infergate/billing/ledger_writer.h"
#include "infergate/billing/timestamp.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "support/process.h"

namespace infergate {
namespace {

using billing::BillingError;
using billing::BillingMonth;
using billing::Invoice;
using Kind = BillingError::Kind;

class Invoices : public test::BillingDb {
 protected:
  Invoice generate(const std::string& tenant, const std::string& period) {
    return in_tx([&](pqxx::work& tx) {
      return billing::generate_invoice(tx, tenant, BillingMonth::parse(period)).invoice;
    });
  }
  Invoice finalize(const std::string& id) {
    return in_tx([&](pqxx::work& tx) { return billing::finalize_invoice(tx, id); });
  }
  static std::int64_t quantity(const Invoice& inv, const std::string& cls, bool adjustment = false) {
    std::int64_t q = 0;
    for (const auto& l : inv.lines)
      if (l.token_class == cls && l.is_adjustment == adjustment) q += l.quantity;
    return q;
  }
};

TEST_F(Invoices, RequestAtTheLastMillisecondOfTheLocalMonthBelongsToThatMonth) {
  // Berlin is UTC+2 at the end of March 2026 (summer time since the 29th), UTC+1 in February.
  const std::string t = tenant("berlin", "Europe/Berlin", "EUR");
  price("m", "input", "1", "2020-01-01T00:00:00Z", "EUR");
  usage(t, "feb-last", "m", "2026-02-28T23:59:59.999+01:00", 1, 0);
  usage(t, "mar-first", "m", "2026-03-01T00:00:00.000+01:00", 10, 0);
  usage(t, "mar-last", "m", "2026-03-31T23:59:59.999+02:00", 100, 0);
  usage(t, "apr-first", "m", "2026-04-01T00:00:00.000+02:00", 1000, 0);
  const Invoice march = generate(t, "2026-03");
  EXPECT_EQ(billing::format_rfc3339_us(march.period_start_us), "2026-02-28T23:00:00.000Z");
  EXPECT_EQ(billing::format_rfc3339_us(march.period_end_us), "2026-03-31T22:00:00.000Z");
  EXPECT_EQ(march.timezone, "Europe/Berlin");
  EXPECT_EQ(march.currency, "EUR");
  EXPECT_EQ(quantity(march, "input"), 110);
  EXPECT_EQ(quantity(generate(t, "2026-02"), "input"), 1);
  EXPECT_EQ(quantity(generate(t, "2026-04"), "input"), 1000);
  // In UTC the last one of March would already be April's.
  const std::string u = tenant("utc");
  usage(u, "mar-last", "m", "2026-03-31T23:59:59.999+02:00", 100, 0);
  price("m", "input", "1", "2020-01-01T00:00:00Z");
  EXPECT_EQ(quantity(generate(u, "2026-03"), "input"), 100);
  EXPECT_EQ(quantity(generate(u, "2026-04"), "input"), 0);
}

// A tenant's months are cut in its billing time zone. Once it has an invoice (draft or
// finalized), the time zone stays: moved, January's invoice would no longer be found for
// January (a second one would be made, and both finalized) and February would start an hour
// before January ended. The change is refused, naming the field, and changes nothing; with the
// invoices voided it goes through.
TEST_F(Invoices, ATenantWithInvoicesKeepsItsTimeZone) {
  const std::string t = tenant("acme", "UTC");
  price("m", "input", "1.00", "2026-01-01T00:00:00Z");
  usage(t, "a", "m", "2026-01-10T00:00:00Z", 1000, 0);
  const Invoice jan = finalize(generate(t, "2026-01").id);
  const auto set_timezone = [&](const std::string& tz) {
    return in_tx([&](pqxx::work& tx) {
      gateway::accounts::TenantPatch patch;
      patch.billing_timezone = tz;
      return gateway::accounts::update_tenant(tx, t, patch, "test").billing_timezone;
    });
  };
  try {
    set_timezone("Europe/Berlin");
    FAIL() << "the time zone changed under a finalized invoice";
  } catch (const gateway::accounts::AccountError& e) {
    EXPECT_EQ(e.kind(), gateway::accounts::AccountError::Kind::conflict);
    EXPECT_EQ(e.field(), "billing_timezone");
  }
  EXPECT_EQ(set_timezone("UTC"), "UTC");  // the same zone is no change
  EXPECT_THROW(generate(t, "2026-01"), billing::BillingError);  // January is found: finalized
  usage(t, "b", "m", "2026-02-10T00:00:00Z", 10, 0);
  const Invoice feb_draft = generate(t, "2026-02");
  in_tx([&](pqxx::work& tx) { return billing::void_invoice(tx, jan.id, "wrong time zone"); });
  // Only drafts left: the change goes through and discards them (cut in the old zone).
  EXPECT_EQ(set_timezone("Europe/Berlin"), "Europe/Berlin");
  const Invoice feb = generate(t, "2026-02");
  EXPECT_NE(feb.id, feb_draft.id);
  EXPECT_EQ(billing::format_rfc3339_us(feb.period_start_us), "2026-01-31T23:00:00.000Z");
  const auto live_februaries = in_tx([&](pqxx::work& tx) {
    return tx.exec_params1("SELECT count(*) FROM invoices WHERE tenant_id = $1 AND period = '2026-02' "
                           "AND status <> 'void'", t)[0].as<int>();
  });
  EXPECT_EQ(live_februaries, 1);  // the old zone's draft is gone, not a second February
}

// January finalized, then late January usage billed as an adjustment on February's invoice,
// then January voided and generated again: the new January bills its usage less what February
// already billed for it, so January's usage is billed once in all (it used to be billed with
// the late usage twice until some later invoice credited it back).
TEST_F(Invoices, AVoidedMonthGeneratedAgainDoesNotBillItsAdjustmentsTwice) {
  const std::string t = tenant("acme");
  price("m", "input", "1.00", "2025-01-01T00:00:00Z");
  usage(t, "jan-1", "m", "2026-01-10T00:00:00Z", 1000, 0);
  const Invoice jan = finalize(generate(t, "2026-01").id);
  usage(t, "jan-late", "m", "2026-01-20T00:00:00Z", 70, 0);  // arrives after January's invoice
  usage(t, "feb-1", "m", "2026-02-10T00:00:00Z", 5, 0);
  const Invoice feb = finalize(generate(t, "2026-02").id);
  EXPECT_EQ(quantity(feb, "input"), 5);
  EXPECT_EQ(quantity(feb, "input", true), 70);
  in_tx([&](pqxx::work& tx) { return billing::void_invoice(tx, jan.id, "reissued"); });
  const Invoice again = finalize(generate(t, "2026-01").id);
  EXPECT_EQ(quantity(again, "input"), 1000);  // 1,070 in the ledger, 70 billed by February
  EXPECT_EQ(quantity(again, "input", true), 0);
  // And the next month finds nothing left to adjust for January.
  usage(t, "mar-1", "m", "2026-03-10T00:00:00Z", 1, 0);
  const Invoice mar = generate(t, "2026-03");
  EXPECT_EQ(quantity(mar, "input"), 1);
  EXPECT_EQ(quantity(mar, "input", true), 0);
}

// The same, but the tenant's currency changed before January was voided: February billed
// January's late usage in USD, which EUR prices cannot net. January is refused (409) rather
// than billed with that usage a second time.
TEST_F(Invoices, AVoidedMonthWhoseAdjustmentsWereBilledInAnotherCurrencyIsRefused) {
  const std::string t = tenant("acme", "UTC", "USD");
  price("m", "input", "1.00", "2025-01-01T00:00:00Z", "USD");
  price("m", "input", "0.90", "2025-01-01T00:00:00Z", "EUR");
  usage(t, "jan-1", "m", "2026-01-10T00:00:00Z", 1000, 0);
  const Invoice jan = finalize(generate(t, "2026-01").id);
  usage(t, "jan-late", "m", "2026-01-20T00:00:00Z", 70, 0);
  const Invoice feb = finalize(generate(t, "2026-02").id);
  ASSERT_EQ(quantity(feb, "input", true), 70);
  in_tx([&](pqxx::work& tx) {
    gateway::accounts::TenantPatch patch;
    patch.currency = "EUR";
    return gateway::accounts::update_tenant(tx, t, patch, "test").currency;
  });
  in_tx([&](pqxx::work& tx) { return billing::void_invoice(tx, jan.id, "reissued in EUR"); });
  try {
    generate(t, "2026-01");
    FAIL() << "January was generated in EUR with the 70 tokens February billed in USD";
  } catch (const BillingError& e) {
    EXPECT_EQ(e.kind(), Kind::conflict);
    EXPECT_NE(std::string(e.what()).find("USD"), std::string::npos) << e.what();
  }
}

TEST_F(Invoices, PriceChangeMidMonthPricesEachRequestByItsVersion) {
  const std::string t = tenant("acme");
  const auto v1 = price("m", "output", "2.00", "2026-01-01T00:00:00Z");
  const auto v2 = price("m", "output", "3.50", "2026-01-15T12:00:00Z");
  price("m", "output", "100", "2026-02-01T00:00:00Z");  // next month: not used
  usage(t, "a", "m", "2026-01-10T00:00:00Z", 0, 1'000'000);          // v1: 2.00
  usage(t, "b", "m", "2026-01-15T11:59:59.999999Z", 0, 500'000);     // v1: 1.00
  usage(t, "c", "m", "2026-01-15T12:00:00Z", 0, 1'000'000);          // v2: 3.50
  usage(t, "d", "m", "2026-01-31T23:59:59Z", 0, 1);                  // v2: 0.0000035
  const Invoice inv = generate(t, "2026-01");
  ASSERT_EQ(inv.lines.size(), 1u);
  const auto& line = inv.lines[0];
  EXPECT_EQ(line.quantity, 2'500'001);
  EXPECT_FALSE(line.unit_price_per_million.has_value());  // two prices
  ASSERT_EQ(line.prices.size(), 2u);
  for (const auto& p : line.prices) {
    if (p.price_version_id == v1.id) {
      EXPECT_EQ(p.quantity, 1'500'000);
      EXPECT_EQ(p.exact_amount, billing::Decimal::parse("3"));
    } else {
      EXPECT_EQ(p.price_version_id, v2.id);
      EXPECT_EQ(p.quantity, 1'000'001);
      EXPECT_EQ(p.exact_amount, billing::Decimal::parse("3.5000035"));
    }
  }
  EXPECT_EQ(line.exact_amount, billing::Decimal::parse("6.5000035"));
  EXPECT_EQ(line.amount_minor, 650);
  EXPECT_EQ(inv.total_minor, 650);
}

TEST_F(Invoices, LinesPerModelAndClassAndTotalIsTheSumOfRoundedLines) {
  const std::string t = tenant("sum");
  const std::vector<std::string> models{"alpha", "beta", "gamma", "delta"};
  const std::vector<std::string> prices{"0.333333", "1.115", "7.77777", "0.0049"};
  const std::vector<std::string> classes{"input", "cached_input", "output"};
  std::map<std::pair<std::string, std::string>, std::string> price_of;
  for (std::size_t i = 0; i < models.size(); ++i)
    for (std::size_t c = 0; c < classes.size(); ++c) {
      price_of[{models[i], classes[c]}] = prices[(i + c) % prices.size()];
      price(models[i], classes[c], prices[(i + c) % prices.size()], "2025-01-01T00:00:00Z");
    }
  std::map<std::pair<std::string, std::string>, std::int64_t> qty;
  int n = 0;
  for (std::size_t i = 0; i < models.size(); ++i)
    for (int k = 0; k < 5; ++k) {
      const std::int64_t prompt = 123'457 + 1000 * k, completion = 98'765 + 77 * i,
                         cached = 4'321 * k;
      usage(t, "r" + std::to_string(n++), models[i],
            "2025-06-0" + std::to_string(k + 1) + "T10:00:00Z", prompt, completion, cached);
      qty[{models[i], "input"}] += prompt - cached;
      qty[{models[i], "cached_input"}] += cached;
      qty[{models[i], "output"}] += completion;
    }
  const Invoice inv = generate(t, "2025-06");
  ASSERT_EQ(inv.lines.size(), 12u);
  std::int64_t sum = 0;
  billing::Decimal exact_total;
  for (const auto& l : inv.lines) {
    const auto key = std::make_pair(l.model, l.token_class);
    EXPECT_EQ(l.quantity, qty[key]) << l.model << " " << l.token_class;
    const auto expected = billing::line_amount(billing::Decimal::parse(price_of[key]), qty[key]);
    EXPECT_EQ(l.exact_amount, expected) << l.model << " " << l.token_class;
    EXPECT_EQ(l.amount_minor, expected.to_minor_units(2));
    sum += l.amount_minor;
    exact_total = exact_total + l.exact_amount;
  }
  EXPECT_EQ(inv.total_minor, sum);
  EXPECT_EQ(count("SELECT sum(amount_minor) FROM invoice_lines"), inv.total_minor);
  EXPECT_EQ(count("SELECT total_minor FROM invoices"), inv.total_minor);
  // The stored exact amounts are exact: their sum in SQL equals ours.
  pqxx::nontransaction q(conn);
  EXPECT_EQ(billing::Decimal::parse(q.exec1("SELECT sum(exact_amount)::text FROM invoice_lines")[0]
                                        .as<std::string>()),
            exact_total);
}

// Cached prompt tokens are billed at a cached_input price only where one is in force for the
// request; before it (or without one) they are billed as input, at the input price, and nothing
// is refused for want of a cache price.
TEST_F(Invoices, CachedTokensWithoutACachePriceAreBilledAsInput) {
  const std::string t = tenant("cache");
  const auto in = price("m", "input", "2", "2026-01-01T00:00:00Z");
  const auto cached = price("m", "cached_input", "0.5", "2026-01-20T00:00:00Z");
  price("m", "output", "8", "2026-01-01T00:00:00Z");
  usage(t, "before", "m", "2026-01-10T00:00:00Z", 1000, 10, 600);   // no cache price yet
  usage(t, "after", "m", "2026-01-25T00:00:00Z", 1000, 10, 600);    // 400 input + 600 cached
  usage(t, "nocache", "m", "2026-01-26T00:00:00Z", 300, 0, 0);
  usage(t, "overcount", "m", "2026-01-27T00:00:00Z", 50, 0, 80);    // never more than the prompt
  const Invoice inv = generate(t, "2026-01");
  EXPECT_EQ(quantity(inv, "input"), 1000 + 400 + 300);
  EXPECT_EQ(quantity(inv, "cached_input"), 600 + 50);
  EXPECT_EQ(quantity(inv, "output"), 20);
  for (const auto& l : inv.lines) {
    ASSERT_EQ(l.prices.size(), 1u) << l.token_class;
    if (l.token_class == "input") {
      EXPECT_EQ(l.prices[0].price_version_id, in.id);
    } else if (l.token_class == "cached_input") {
      EXPECT_EQ(l.prices[0].price_version_id, cached.id);
    }
  }
  // 1700 x 2 + 650 x 0.5 + 20 x 8 per million = 0.0034 + 0.000325 + 0.00016
  billing::Decimal exact;
  for (const auto& l : inv.lines) exact = exact + l.exact_amount;
  EXPECT_EQ(exact, billing::Decimal::parse("0.003885"));
  // Without an input price, cached tokens with no cache price in force are unpriced usage.
  const std::string u = tenant("cache-noinput");
  price("n", "output", "1", "2026-01-01T00:00:00Z");
  usage(u, "x", "n", "2026-01-10T00:00:00Z", 100, 1, 100);
  const BillingError e = billing_error([&](pqxx::work& tx) {
    billing::generate_invoice(tx, u, BillingMonth::parse("2026-01"));
  });
  EXPECT_EQ(e.kind(), Kind::conflict);
  EXPECT_NE(std::string(e.what()).find("token class input"), std::string::npos) << e.what();
}

TEST_F(Invoices, UsageWithoutAPriceInForceIsRefusedNamingIt) {
  const std::string t = tenant("noprice");
  price("m", "input", "1", "2026-01-20T00:00:00Z");
  usage(t, "early", "m", "2026-01-05T00:00:00Z", 10, 0);
  const BillingError e = billing_error([&](pqxx::work& tx) {
    billing::generate_invoice(tx, t, BillingMonth::parse("2026-01"));
  });
  EXPECT_EQ(e.kind(), Kind::conflict);
  EXPECT_NE(std::string(e.what()).find("'m'"), std::string::npos) << e.what();
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 0);
}

TEST_F(Invoices, DraftsRegenerateFinalizedRefuseEveryChangeAndNumbersHaveNoGaps) {
  const std::string a = tenant("a"), b = tenant("b");
  price("m", "input", "1", "2025-01-01T00:00:00Z");
  usage(a, "r1", "m", "2025-03-03T00:00:00Z", 1'000'000, 0);
  const Invoice d1 = generate(a, "2025-03");
  EXPECT_EQ(d1.status, "draft");
  EXPECT_FALSE(d1.number.has_value());
  EXPECT_EQ(d1.total_minor, 100);
  usage(a, "r2", "m", "2025-03-04T00:00:00Z", 1'000'000, 0);
  const Invoice d2 = generate(a, "2025-03");  // regenerated: same invoice, new lines
  EXPECT_EQ(d2.id, d1.id);
  EXPECT_EQ(d2.total_minor, 200);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 1);

  // A period that has not ended cannot be finalized, and the refusal uses no number.
  const Invoice current = in_tx([&](pqxx::work& tx) {
    auto now = tx.exec1("SELECT to_char(now(), 'YYYY-MM')")[0].as<std::string>();
    return billing::generate_invoice(tx, b, BillingMonth::parse(now)).invoice;
  });
  EXPECT_EQ(billing_error([&](pqxx::work& tx) { billing::finalize_invoice(tx, current.id); }).kind(),
            Kind::conflict);

  const Invoice f1 = finalize(d1.id);
  EXPECT_EQ(f1.status, "finalized");
  EXPECT_EQ(f1.number, 1);
  ASSERT_TRUE(f1.finalized_at.has_value());
  usage(b, "rb", "m", "2025-03-05T00:00:00Z", 5, 0);
  const Invoice f2 = finalize(generate(b, "2025-03").id);
  EXPECT_EQ(f2.number, 2);

  // Every change is refused: regenerate, finalize again, void a draft, and raw SQL.
  EXPECT_EQ(billing_error([&](pqxx::work& tx) {
              billing::generate_invoice(tx, a, BillingMonth::parse("2025-03"));
            }).param(),
            "period");
  EXPECT_EQ(billing_error([&](pqxx::work& tx) { billing::finalize_invoice(tx, f1.id); }).kind(),
            Kind::conflict);
  EXPECT_EQ(billing_error([&](pqxx::work& tx) {
              billing::void_invoice(tx, current.id, "typo");
            }).kind(),
            Kind::conflict);
  EXPECT_EQ(billing_error([&](pqxx::work& tx) { billing::void_invoice(tx, f1.id, ""); }).param(),
            "reason");
  for (const char* sql : {"UPDATE invoice_lines SET amount_minor = 1",
                          "DELETE FROM invoice_lines",
                          "UPDATE invoices SET total_minor = 0 WHERE number = 1",
                          "DELETE FROM invoices WHERE number = 1"}) {
    pqxx::work tx(conn);
    EXPECT_THROW(tx.exec(sql), pqxx::sql_error) << sql;
  }
  EXPECT_EQ(count("SELECT total_minor FROM invoices WHERE number = 1"), 200);

  // Void keeps the number; a void invoice is final too; a new draft may replace it.
  const Invoice v = in_tx([&](pqxx::work& tx) { return billing::void_invoice(tx, f1.id, "wrong PO"); });
  EXPECT_EQ(v.status, "void");
  EXPECT_EQ(v.number, 1);
  EXPECT_EQ(*v.void_reason, "wrong PO");
  EXPECT_EQ(billing_error([&](pqxx::work& tx) { billing::void_invoice(tx, f1.id, "again"); }).kind(),
            Kind::conflict);
  const Invoice replacement = generate(a, "2025-03");
  EXPECT_NE(replacement.id, f1.id);
  EXPECT_EQ(finalize(replacement.id).number, 3);
  EXPECT_EQ(count("SELECT last_number FROM invoice_number_counter"), 3);
}

TEST_F(Invoices, LateUsageBecomesOneAdjustmentLineAndIsNeverBilledTwice) {
  const std::string t = tenant("late", "America/New_York");
  price("m", "input", "10", "2025-01-01T00:00:00Z");
  usage(t, "jan-1", "m", "2025-01-10T12:00:00Z", 100'000, 0);
  const Invoice jan = finalize(generate(t, "2025-01").id);
  EXPECT_EQ(jan.total_minor, 100);
  // A record of January reaches the ledger after January was finalized.
  usage(t, "jan-late", "m", "2025-01-31T23:59:59.999-05:00", 50'000, 0);
  usage(t, "feb-1", "m", "2025-02-02T00:00:00Z", 10'000, 0);
  const Invoice feb = finalize(generate(t, "2025-02").id);
  ASSERT_EQ(feb.lines.size(), 2u);
  EXPECT_EQ(quantity(feb, "input"), 10'000);
  EXPECT_EQ(quantity(feb, "input", true), 50'000);
  EXPECT_EQ(*feb.lines[1].source_period, "2025-01");
  EXPECT_EQ(billing::format_rfc3339_us(feb.lines[1].source_start_us), "2025-01-01T05:00:00.000Z");
  EXPECT_EQ(feb.total_minor, 10 + 50);
  // January itself is unchanged, and March does not bill the late record again.
  EXPECT_EQ(in_tx([&](pqxx::work& tx) { return *billing::find_invoice(tx, jan.id); }).total_minor, 100);
  const Invoice mar = generate(t, "2025-03");
  EXPECT_TRUE(mar.lines.empty());
  EXPECT_EQ(mar.total_minor, 0);
  // A second late record (for February, now) is billed on March, once.
  usage(t, "feb-late", "m", "2025-02-20T00:00:00Z", 20'000, 0);
  const Invoice mar2 = finalize(generate(t, "2025-03").id);
  EXPECT_EQ(quantity(mar2, "input", true), 20'000);
  EXPECT_EQ(*mar2.lines[0].source_period, "2025-02");
  EXPECT_TRUE(generate(t, "2025-04").lines.empty());
  // Resending a record already in the ledger changes nothing anywhere.
  EXPECT_THROW(usage(t, "jan-late", "m", "2025-01-31T23:59:59.999-05:00", 50'000, 0),
               pqxx::unique_violation);
}

TEST_F(Invoices, TwoDraftsCannotBothBillTheSameLateUsage) {
  const std::string t = tenant("twodrafts");
  price("m", "output", "1", "2025-01-01T00:00:00Z");
  usage(t, "jan", "m", "2025-01-05T00:00:00Z", 0, 1'000'000);
  finalize(generate(t, "2025-01").id);
  usage(t, "jan-late", "m", "2025-01-06T00:00:00Z", 0, 2'000'000);
  const Invoice feb = generate(t, "2025-02");
  const Invoice mar = generate(t, "2025-03");
  EXPECT_EQ(quantity(feb, "output", true), 2'000'000);
  EXPECT_EQ(quantity(mar, "output", true), 2'000'000);  // both drafts see it...
  finalize(feb.id);
  const BillingError stale =
      billing_error([&](pqxx::work& tx) { billing::finalize_invoice(tx, mar.id); });  // ...once
  EXPECT_EQ(stale.kind(), Kind::conflict);
  EXPECT_NE(std::string(stale.what()).find("again"), std::string::npos) << stale.what();
  const Invoice mar2 = generate(t, "2025-03");
  EXPECT_EQ(quantity(mar2, "output", true), 0);
  EXPECT_EQ(finalize(mar2.id).status, "finalized");
}

TEST_F(Invoices, ListFiltersAndPaginates) {
  price("m", "input", "1", "2025-01-01T00:00:00Z");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const std::string t = tenant("t" + std::to_string(i));
    ids.push_back(generate(t, "2025-05").id);
  }
  generate(tenant("other"), "2025-06");
  std::vector<std::string> seen;
  std::optional<std::string> cursor;
  billing::InvoiceFilter f;
  f.period = BillingMonth::parse("2025-05");
  do {
    auto page = in_tx([&](pqxx::work& tx) { return billing::list_invoices(tx, f, cursor, 2, false); });
    for (const auto& i : page.invoices) seen.push_back(i.id);
    cursor = page.next_cursor;
  } while (cursor);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(seen, ids);
  f.tenant = "t3";
  EXPECT_EQ(in_tx([&](pqxx::work& tx) { return billing::list_invoices(tx, f, {}, 0, true); })
                .invoices.size(),
            1u);
  f.tenant = "nobody";
  EXPECT_EQ(billing_error([&](pqxx::work& tx) { billing::list_invoices(tx, f, {}, 0, false); }).kind(),
            Kind::not_found);
  EXPECT_EQ(billing_error([&](pqxx::work& tx) {
              billing::generate_invoice(tx, "nobody", BillingMonth::parse("2025-05"));
            }).param(),
            "tenant");
}

TEST_F(Invoices, TheSameJournalReplayedThreeTimesGivesIdenticalTotals) {
  using namespace std::chrono_literals;
  namespace fs = std::filesystem;
  const std::string t = tenant("replay", "Europe/Paris", "EUR");
  price("toy", "input", "0.15", "2025-01-01T00:00:00Z", "EUR");
  price("toy", "cached_input", "0.075", "2025-01-01T00:00:00Z", "EUR");
  price("toy", "output", "0.6", "2025-01-01T00:00:00Z", "EUR");
  price("toy", "output", "0.65", "2025-09-15T00:00:00Z", "EUR");
  const std::string dir = test::make_temp_dir("replay"), pristine = test::make_temp_dir("pristine");
  const std::int64_t sep1 = billing::parse_rfc3339_us("2025-09-01T00:00:00+02:00");
  {
    billing::UsageJournal journal({dir, 8192});
    for (int i = 0; i < 600; ++i) {
      billing::UsageRecord r;
      r.tenant_id = t;
      r.request_id = "req_" + std::to_string(i);
      r.model = "toy";
      r.prompt_tokens = 1000 + i;
      r.cached_tokens = i % 3 == 0 ? 200 : 0;
      r.completion_tokens = 17 * i;
      r.status = "completed";
      r.started_at_us = sep1 + static_cast<std::int64_t>(i) * 4'320'000'000LL;  // 72 min apart
      r.ended_at_us = r.started_at_us + 1000;
      journal.append_sync(r);
    }
  }
  fs::copy(dir, pristine, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  infra::MetricsRegistry metrics;
  auto drain = [&](const std::string& from) {
    billing::UsageJournal journal({from, 8192});
    billing::LedgerWriter writer(journal, db, {}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s));
    writer.stop();
  };
  drain(dir);
  const Invoice first = generate(t, "2025-09");
  ASSERT_EQ(first.lines.size(), 3u);
  EXPECT_GT(first.total_minor, 0);
  for (int round = 0; round < 3; ++round) {
    const std::string replay = test::make_temp_dir("replay-again");
    fs::copy(pristine, replay, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    drain(replay);
    fs::remove_all(replay);
    EXPECT_EQ(count("SELECT count(*) FROM usage_events"), 600) << "round " << round;
    const Invoice again = generate(t, "2025-09");  // the draft, regenerated from the ledger
    EXPECT_EQ(again.total_minor, first.total_minor) << "round " << round;
    ASSERT_EQ(again.lines.size(), first.lines.size());
    for (std::size_t i = 0; i < first.lines.size(); ++i) {
      EXPECT_EQ(again.lines[i].quantity, first.lines[i].quantity);
      EXPECT_EQ(again.lines[i].exact_amount, first.lines[i].exact_amount);
    }
  }
  fs::remove_all(dir);
  fs::remove_all(pristine);
}

}  // namespace
}  // namespace infergate
