<resource schema="amtest">
  <!-- Test images of anomalymatch_astro's archive tests (see ../make_images.py and
       .ci/dachs_setup.sh).  SIAP 1 + ObsCore (hence SIAP 2 and TAP), and a
       datalink/SODA service for cutouts. -->
  <meta name="title">anomalymatch_astro test images</meta>
  <meta name="description">Four small real images (three HST CANDELS GOODS-N bands
    and a DSS image of M13) for the archive-access tests of anomalymatch_astro.</meta>
  <meta name="creationDate">2026-11-28T00:00:00Z</meta>
  <meta name="subject">Galaxies</meta>
  <meta name="creator.name">anomalymatch_astro developers</meta>
  <meta name="shortName">amtest</meta>

  <table id="main" onDisk="True" mixin="//siap#pgs" adql="True">
    <meta name="_associatedDatalinkService">
      <meta name="serviceId">dl</meta>
      <meta name="idColumn">pub_did</meta>
    </meta>
    <mixin
      calibLevel="2"
      collectionName="'amtest'"
      targetName="object"
      facilityName="instId"
      instrumentName="instId"
      did="pub_did"
      >//obscore#publishSIAP</mixin>
    <column name="object" type="text" ucd="meta.id;src" tablehead="Object"
      description="Target of the image" verbLevel="10"/>
    <column name="pub_did" type="text" ucd="meta.ref.ivoid"
      tablehead="PubDID" description="Publisher dataset identifier" verbLevel="10"/>
  </table>

  <data id="import">
    <sources pattern="data/*.fits"/>
    <fitsProdGrammar qnd="True">
      <rowfilter procDef="//products#define">
        <bind key="table">"\schema.main"</bind>
      </rowfilter>
    </fitsProdGrammar>
    <make table="main">
      <rowmaker>
        <apply procDef="//siap#setMeta">
          <bind key="title">"{} {}".format(@OBJECT, @FILTER)</bind>
          <bind key="bandpassId">@FILTER</bind>
          <bind key="instrument">"{} {}".format(@TELESCOP, @INSTRUME)</bind>
          <bind key="dateObs">None</bind>
        </apply>
        <apply procDef="//siap#computePGS"/>
        <map key="object">@OBJECT</map>
        <map key="pub_did">\standardPubDID</map>
      </rowmaker>
    </make>
  </data>

  <service id="i" allowed="form,siap.xml">
    <meta name="shortName">amtest siap</meta>
    <meta name="sia.type">Pointed</meta>
    <meta name="testQuery.pos.ra">189.49206</meta>
    <meta name="testQuery.pos.dec">62.20615</meta>
    <meta name="testQuery.size.ra">0.01</meta>
    <meta name="testQuery.size.dec">0.01</meta>
    <publish render="siap.xml" sets="local"/>
    <dbCore queriedTable="main">
      <condDesc original="//siap#protoInput"/>
      <condDesc original="//siap#humanInput"/>
    </dbCore>
  </service>

  <service id="dl" allowed="dlget,dlmeta">
    <meta name="title">amtest datalink and SODA</meta>
    <datalinkCore>
      <descriptorGenerator procDef="//soda#fits_genDesc">
        <bind key="accrefPrefix">"amtest/"</bind>
      </descriptorGenerator>
      <FEED source="//soda#fits_standardDLFuncs"/>
    </datalinkCore>
  </service>
</resource>
