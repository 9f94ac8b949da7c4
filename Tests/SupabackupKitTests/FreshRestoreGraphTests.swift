import Testing

@testable import SupabackupKit

@Suite("Fresh restore graph")
struct FreshRestoreGraphTests {
    @Test(
        "tables are read from index and foreign-key statements as pg_get_indexdef and pg_get_constraintdef write them")
    func names() {
        #expect(
            FreshRestoreGraph.indexTable("CREATE INDEX t_a ON public.t USING btree (a);")
                == TableName(schema: "public", name: "t"))
        #expect(
            FreshRestoreGraph.indexTable(#"CREATE UNIQUE INDEX "x ON y" ON ONLY "My Schema"."T""x" USING btree (a);"#)
                == nil)
        #expect(
            FreshRestoreGraph.indexTable(#"CREATE UNIQUE INDEX xy ON ONLY "My Schema"."T""x" USING btree (a);"#)
                == TableName(schema: "My Schema", name: #"T"x"#))
        let keys = FreshRestoreGraph.foreignKeyTables(
            "ALTER TABLE ONLY zoo.keepers ADD CONSTRAINT k FOREIGN KEY (a) REFERENCES \"zoo api\".\"Pens\"(id);")
        #expect(keys?.child == TableName(schema: "zoo", name: "keepers"))
        #expect(keys?.parent == TableName(schema: "zoo api", name: "Pens"))
        #expect(FreshRestoreGraph.foreignKeyTables("CREATE TRIGGER t ...") == nil)
    }
}

@Suite("Fresh restore schedule")
struct FreshRestoreScheduleTests {
    static func step(_ name: String) -> RestorePlan.Step {
        RestorePlan.Step(
            table: TableName(schema: "public", name: name), rows: 1, file: "data/public.\(name).ndjson.zst",
            conflictKey: ["id"], columns: [], overridingSystemValue: false, partitioned: false)
    }

    static func statement(_ kind: String, _ name: String, _ sql: String) -> SchemaScript.Statement {
        SchemaScript.Statement(section: .postData, kind: kind, name: name, sql: sql)
    }

    @Test("indexes wait for their table only; foreign keys for their tables, and for each other where they share one")
    func edges() throws {
        let graph = FreshRestoreGraph(
            steps: [Self.step("big"), Self.step("small")],
            postData: [
                Self.statement("index", "public.big_a", "CREATE INDEX big_a ON public.big USING btree (a);"),
                Self.statement("index", "public.small_a", "CREATE INDEX small_a ON public.small USING btree (a);"),
                Self.statement("index", "public.p1_a", "CREATE INDEX p1_a ON public.p1 USING btree (a);"),
                Self.statement(
                    "foreign-key", "public.big f1",
                    "ALTER TABLE ONLY public.big ADD CONSTRAINT f1 FOREIGN KEY (s) REFERENCES public.small(id);"),
                Self.statement(
                    "foreign-key", "public.small f2",
                    "ALTER TABLE ONLY public.small ADD CONSTRAINT f2 FOREIGN KEY (b) REFERENCES public.big(id);"),
                Self.statement(
                    "foreign-key", "public.notes f3",
                    "ALTER TABLE ONLY public.notes ADD CONSTRAINT f3 FOREIGN KEY (u) REFERENCES auth.users(id);"),
                Self.statement("trigger", "public.big t", "CREATE TRIGGER t ..."),
            ])
        func position(_ name: String) throws -> Int {
            try #require(
                graph.items.firstIndex { item in
                    switch item {
                    case .table(let step): return step.table.name == name
                    case .statement(let statement): return statement.name == name
                    }
                })
        }
        let big = try position("big")
        let small = try position("small")
        #expect(big == 0 && graph.after[big].isEmpty)
        #expect(try position("public.big_a") == 1 && graph.after[1] == [big])
        #expect(graph.after[try position("public.small_a")] == [small])
        #expect(graph.after[try position("public.p1_a")].sorted() == [big, small])
        let f1 = try position("public.big f1")
        #expect(Set(graph.after[f1]) == [big, small, try position("public.small_a")])
        #expect(graph.after[try position("public.small f2")].contains(f1))
        #expect(graph.after[try position("public.notes f3")].isEmpty)
        #expect(graph.items.count == 8, "the trigger is left to the last transaction")
    }
}
