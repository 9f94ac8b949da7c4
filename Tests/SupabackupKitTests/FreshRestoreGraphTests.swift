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
